"""Faults: upstream killed mid-stream, refusing, hanging; a client vanishing mid-stream; descriptors
exhausted. Each test runs its own Tollgate (plain listener, JSON access log) and asserts what a client sees, then
that Tollgate's descriptor count is back to its baseline.

Not covered yet here: users file and certificate replaced with broken ones (Tests/EndToEndTests covers reload).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import MODEL, PASSWORD, USER, Proc, own_state_dir, wait_for_port, wait_until

AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_fake(binaries, log_dir: Path, name: str, port: int = 0, interval_ms: int = 20, tokens: int = 50) -> tuple:
    p = Proc(name, [str(binaries["fake-ollama"]), "--listen", f"127.0.0.1:{port}", "--tokens", str(tokens),
                    "--interval-ms", str(interval_ms)], log_dir).start(r"listening on http://127\.0\.0\.1:(\d+)")
    return p, int(p.match.group(1))


def start_tollgate(binaries, users: Path, upstream_port: int, log_dir: Path, name: str, *extra: str,
                   wrapper: tuple = ()) -> tuple:
    p = Proc(name, [*wrapper, str(binaries["tollgate"]), "serve", "--listen-plain", "127.0.0.1:0",
                    "--upstream", f"http://127.0.0.1:{upstream_port}", "--users", str(users), "--rate", "0",
                    "--metrics-listen", "off", *own_state_dir(extra, log_dir, name), *extra],
             log_dir).start(r"serving http://127\.0\.0\.1:(\d+)")
    port = int(p.match.group(1))
    wait_for_port("127.0.0.1", port)
    # The usage ledger's thread opens its database (3 descriptors: the file, its WAL and shared memory) at start,
    # beside the loops: the tests that count descriptors take their baseline once it has.
    if "off" not in [extra[i + 1] for i, arg in enumerate(extra[:-1]) if arg == "--ledger"]:
        assert wait_until(lambda: ledger_open(p.popen.pid)), p.logs()
    return p, port


def ledger_open(pid: int) -> bool:
    """Whether the process holds the usage ledger's database open."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).endswith("tollgate.db"):
                return True
        except OSError:
            pass
    return False


def request(port: int, method: str, path: str, body: dict | None = None, timeout: float = 20) -> tuple:
    """One request on a new connection; returns (status, body bytes, raw bytes)."""
    data = json.dumps(body).encode() if body is not None else b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {AUTH}\r\n"
                  f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest, raw


def open_stream(port: int, tokens: int = 200) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    data = json.dumps({"model": MODEL, "prompt": "x", "options": {"num_predict": tokens}}).encode()
    s.sendall(f"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nAuthorization: {AUTH}\r\n"
              f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return s


def read_lines(s: socket.socket, n: int) -> bytes:
    buf = b""
    while buf.count(b'"done":') < n:
        chunk = s.recv(4096)
        assert chunk, f"stream ended after {buf!r}"
        buf += chunk
    return buf


def test_upstream_killed_mid_stream_then_restarted(binaries, users_file, tmp_path):
    fake, up = start_fake(binaries, tmp_path, "fake-killed")
    tg, port = start_tollgate(binaries, users_file, up, tmp_path, "tollgate-killed")
    try:
        assert request(port, "GET", "/api/tags")[0] == 200
        fds0 = fd_count(tg.popen.pid)
        s = open_stream(port)
        got = read_lines(s, 2)
        fake.popen.send_signal(signal.SIGKILL)
        fake.popen.wait(timeout=10)
        s.settimeout(20)
        while chunk := s.recv(65536):
            got += chunk
        s.close()
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
        assert b"\r\n0\r\n\r\n" not in got and b'"done":true' not in got, "a killed upstream looked like a clean end"
        fake2, _ = start_fake(binaries, tmp_path, "fake-restarted", port=up)
        try:
            for _ in range(5):
                status, body, _ = request(port, "GET", "/api/tags")
                assert status == 200, body
            assert wait_until(lambda: fd_count(tg.popen.pid) <= fds0 + 1), (fd_count(tg.popen.pid), fds0)
        finally:
            fake2.stop()
    finally:
        tg.stop()
        fake.stop()


def test_upstream_refusing_gives_502_in_each_shape(binaries, users_file, tmp_path):
    fake, up = start_fake(binaries, tmp_path, "fake-refusing")
    fake.stop()  # nothing listens on `up` any more
    tg, port = start_tollgate(binaries, users_file, up, tmp_path, "tollgate-refusing")
    try:
        fds0 = fd_count(tg.popen.pid)
        status, body, _ = request(port, "GET", "/api/tags")
        assert status == 502 and isinstance(json.loads(body)["error"], str), body
        status, body, _ = request(port, "GET", "/v1/models")
        err = json.loads(body)["error"]
        assert status == 502 and {"message", "type", "param", "code"} <= set(err), body
        assert wait_until(lambda: fd_count(tg.popen.pid) <= fds0), (fd_count(tg.popen.pid), fds0)
    finally:
        tg.stop()


def test_upstream_hanging_gives_504(binaries, users_file, tmp_path):
    """An upstream that accepts and never answers: with --upstream-timeout 1 the client gets 504 JSON."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept_forever, daemon=True)
    t.start()
    tg, port = start_tollgate(binaries, users_file, lsock.getsockname()[1], tmp_path, "tollgate-hanging",
                              "--upstream-timeout", "1")
    try:
        fds0 = fd_count(tg.popen.pid)
        status, body, _ = request(port, "GET", "/api/tags")
        assert status == 504 and isinstance(json.loads(body)["error"], str), body
        status, body, _ = request(port, "POST", "/v1/chat/completions",
                                  {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        assert status == 504 and "message" in json.loads(body)["error"], body
        assert wait_until(lambda: fd_count(tg.popen.pid) <= fds0), (fd_count(tg.popen.pid), fds0)
    finally:
        tg.stop()
        stop.set()
        t.join(timeout=5)
        for c in held:
            c.close()
        lsock.close()


def test_client_vanishing_mid_stream_cancels_upstream(binaries, users_file, tmp_path):
    """The client closes after 2 lines of a slow stream: the access log says client-aborted, and the upstream
    connection is closed at once (a slow Python fake counts the lines it managed to write)."""
    written = []
    closed = threading.Event()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)

    def slow_upstream():
        lsock.settimeout(30)
        while True:  # skip Tollgate's readiness probes (connect, no request)
            c, _ = lsock.accept()
            c.settimeout(5)
            try:
                if c.recv(65536):
                    break
            except OSError:
                pass
            c.close()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for i in range(200):
                line = json.dumps({"model": MODEL, "response": f"t{i}", "done": False}).encode() + b"\n"
                c.sendall(b"%x\r\n" % len(line) + line + b"\r\n")
                written.append(i)
                time.sleep(0.05)  # a slow model
        except OSError:
            closed.set()
        c.close()

    t = threading.Thread(target=slow_upstream, daemon=True)
    t.start()
    tg, port = start_tollgate(binaries, users_file, lsock.getsockname()[1], tmp_path, "tollgate-vanish",
                              "--log", "json")
    try:
        fds0 = fd_count(tg.popen.pid)
        s = open_stream(port)
        buf = b""
        while buf.count(b'"done": false') < 2:
            chunk = s.recv(4096)
            assert chunk, f"stream ended early: {buf!r}"
            buf += chunk
        s.close()
        closed_at = len(written)
        assert closed.wait(timeout=5), f"the upstream kept producing: {len(written)} lines written"
        assert len(written) - closed_at <= 20, (closed_at, len(written))
        assert wait_until(lambda: '"end":"client-aborted"' in tg.stdout_path.read_text()), tg.logs()
        assert wait_until(lambda: fd_count(tg.popen.pid) <= fds0), (fd_count(tg.popen.pid), fds0)
    finally:
        tg.stop()
        t.join(timeout=15)
        lsock.close()


def test_descriptors_exhausted_then_recovered(binaries, users_file, tmp_path):
    """RLIMIT_NOFILE 64: clients open connections until Tollgate stops accepting; CPU stays quiet meanwhile (no spin
    on a level-triggered EMFILE); once they close, requests are answered again."""
    fake, up = start_fake(binaries, tmp_path, "fake-fds")
    tg, port = start_tollgate(binaries, users_file, up, tmp_path, "tollgate-fds", "--workers", "1",
                              wrapper=("prlimit", "--nofile=64:64", "--"))
    conns = []
    try:
        assert request(port, "GET", "/api/tags")[0] == 200
        fds0 = fd_count(tg.popen.pid)
        for _ in range(100):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            conns.append(c)
        answered = 0
        for c in conns:
            c.settimeout(0.5)
            try:
                if c.recv(4096).startswith(b"HTTP/1.1 200"):
                    answered += 1
            except OSError:
                pass
        assert answered < len(conns), "every connection was answered: the limit was not reached"
        stat = lambda: sum(int(x) for x in Path(f"/proc/{tg.popen.pid}/stat").read_text().split()[13:15])
        cpu0 = stat()
        time.sleep(1)  # measuring CPU use over a second under pressure
        cpu_ticks = stat() - cpu0
        assert cpu_ticks < 50, f"Tollgate used {cpu_ticks} ticks of CPU in 1 s while out of descriptors"
        for c in conns:
            c.close()
        conns.clear()
        assert wait_until(lambda: fd_count(tg.popen.pid) <= fds0 + 1), (fd_count(tg.popen.pid), fds0)
        status, body, _ = request(port, "GET", "/api/tags")
        assert status == 200, body
        print(f"\n[fds] answered {answered} of 100 under RLIMIT_NOFILE 64; CPU {cpu_ticks} ticks/s under pressure")
    finally:
        for c in conns:
            c.close()
        tg.stop()
        fake.stop()
