#!/usr/bin/env python3
"""Two connection-level attacks on one Tollgate worker, measured from outside (loopback only; stops by itself).

  conn_attacks.py flood --tollgate BIN [--seconds 10]
      One client pipelines requests Tollgate answers itself (GET /healthz, an unauthenticated GET /api/tags → 401,
      or both in turn: --requests health|401|mixed) as fast as it can and never reads an answer. Prints Tollgate's RSS each second, its CPU
      seconds over the flood, the bytes the client managed to write, and whether another client's GET /healthz is answered (within 5 s) at the end.

  conn_attacks.py hold --tollgate BIN [--seconds 5]
      One TLS client completes its handshake, then sends all but the last 3 bytes of one application-data record
      and holds. Prints the CPU seconds Tollgate used over the hold (utime + stime from /proc/PID/stat, all
      threads) and whether another client's GET /healthz over TLS is answered (within 5 s) during the hold.

Each run starts BIN (`tollgate serve`, one worker, a throwaway self-signed certificate and users file in a
temporary directory, no upstream needed), runs the attack, kills BIN and prints one JSON object. Only the
standard library and the openssl command.
"""

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Tollgate:
    """BIN serve on two free loopback ports (TLS and plain), one worker, in a temporary directory."""

    def __init__(self, binary):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=localhost", "-days", "1", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem"],
                       check=True, capture_output=True)
        with open(f"{d}/users.htpasswd", "w") as f:
            f.write("alice:{PLAIN}secret\n")
        self.tls_port, self.plain_port = free_port(), free_port()
        args = [os.path.abspath(binary), "serve", "--listen", f"127.0.0.1:{self.tls_port}",
                "--listen-plain", f"127.0.0.1:{self.plain_port}", "--cert", f"{d}/cert.pem", "--key", f"{d}/key.pem",
                "--users", f"{d}/users.htpasswd", "--workers", "1", "--log", "none", "--metrics-listen", "off",
                "--upstream", f"http://127.0.0.1:{free_port()}", "--rate", "0"]
        self.proc = subprocess.Popen(args, cwd=d, stdout=subprocess.DEVNULL, stderr=open(f"{d}/stderr", "w"))
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.plain_port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("tollgate did not start: " + open(f"{d}/stderr").read()[-500:])
                time.sleep(0.05)
        self.pid = self.proc.pid

    def stop(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.dir.cleanup()


def health_answered(port, use_tls, timeout=5.0):
    """Whether GET /healthz on a fresh connection gets a status line within `timeout` seconds."""
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        conn = raw
        if use_tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = ctx.wrap_socket(raw, server_hostname="localhost")
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = conn.recv(64)
        conn.close()
        return data.startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        return False


def flood(args):
    tg = Tollgate(args.tollgate)
    try:
        start_rss = rss_kb(tg.pid)
        health = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
        unauthenticated = b"GET /api/tags HTTP/1.1\r\nHost: localhost\r\n\r\n"
        block = {"health": health, "401": unauthenticated, "mixed": health + unauthenticated}[args.requests] * 64
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", tg.plain_port))
        s.setblocking(False)
        written = 0
        stop = threading.Event()

        def writer():
            nonlocal written
            while not stop.is_set():
                try:
                    # Whole requests only: a partial send continues where it stopped.
                    written += s.send(block[written % len(block):])
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError:
                    return

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        samples = []
        cpu_before = cpu_seconds(tg.pid)
        for _ in range(args.seconds):
            time.sleep(1)
            samples.append(rss_kb(tg.pid))
        cpu_used = cpu_seconds(tg.pid) - cpu_before
        answered = health_answered(tg.plain_port, use_tls=False)
        stop.set()
        t.join()
        s.close()
        print(json.dumps({"attack": "unread pipelined flood", "seconds": args.seconds, "rss_start_kb": start_rss,
                          "requests": args.requests, "rss_each_second_kb": samples, "bytes_written_by_client": written,
                          "tollgate_cpu_seconds": round(cpu_used, 2), "other_client_answered": answered}))
    finally:
        tg.stop()


def hold(args):
    tg = Tollgate(args.tollgate)
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        sock = socket.create_connection(("127.0.0.1", tg.tls_port), timeout=10)
        while True:
            try:
                tls.do_handshake()
                sock.sendall(outgoing.read())
                break
            except ssl.SSLWantReadError:
                pending = outgoing.read()
                if pending:
                    sock.sendall(pending)
                incoming.write(sock.recv(65536))
        tls.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        record = outgoing.read()
        sock.sendall(record[:-3])
        time.sleep(0.2)
        before = cpu_seconds(tg.pid)
        time.sleep(args.seconds)
        used = cpu_seconds(tg.pid) - before
        answered = health_answered(tg.tls_port, use_tls=True)
        sock.close()
        print(json.dumps({"attack": "partial TLS record held", "seconds": args.seconds, "record_bytes": len(record),
                          "withheld_bytes": 3, "tollgate_cpu_seconds": round(used, 2),
                          "tollgate_cpu_percent": round(100 * used / args.seconds), "other_client_answered": answered}))
    finally:
        tg.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("flood")
    f.add_argument("--tollgate", required=True)
    f.add_argument("--seconds", type=int, default=10)
    f.add_argument("--requests", choices=["health", "401", "mixed"], default="mixed",
                   help="what is pipelined: health checks, unauthenticated requests (401), or both in turn")
    h = sub.add_parser("hold")
    h.add_argument("--tollgate", required=True)
    h.add_argument("--seconds", type=int, default=5)
    a = p.parse_args()
    {"flood": flood, "hold": hold}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
