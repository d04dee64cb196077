"""Helpers for the fleet tests: one redis-server, several fake-ollama backends and several Tollgates,
all on 127.0.0.1, started as real processes.

- `RedisServer`: `redis-server` on a free loopback port with no persistence; `stop()` and `start()` again keep the
  port, so the Tollgates configured with its URL see it go away and come back.
- `start_backend`: a `fake-ollama --name NAME` (every response carries `X-Backend: NAME`).
- `start_fleet`: N Tollgates with `--redis`, `--fleet-size`, the same `--upstream` list, a plain listener and a
  metrics listener each on an OS-chosen port (read back from their start-up lines).
- `Instance.metrics()` / `Metrics`: Prometheus text read into (name, labels) → value.
- `Client`: keep-alive HTTP/1.1 connections to the instances (http.client), Basic credentials on every request, an
  optional X-Forwarded-For (the Tollgates trust 127.0.0.1) so each test can use a client address of its own.
- `Stream`: a streamed `/api/generate` on its own socket, read line by line; tells a clean end from a truncation.

Every process is a conftest `Proc`: its output goes to files attached to a failing test's report, and `stop()`
ends it (SIGTERM, then SIGKILL after a bound). `Fleet.stop()` stops everything it started; the fixtures call it.
Every wait here is bounded.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import conftest
from conftest import MODEL, PASSWORD, USER, Proc, wait_for_port

AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
REQUEST_TIMEOUT = 20.0  # seconds any single request or read may take before the test fails
_addresses = itertools.count(1)


def require_redis() -> str:
    """The redis-server binary, or skip: the fleet tests need a real Redis (`.ci/run` installs it)."""
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server): the fleet tests need a real Redis")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_client_address() -> str:
    """A client address no other test in this session uses (10.77.x.y), sent as X-Forwarded-For, so each test
    starts with an empty rate-limit bucket even on a Redis that already holds other keys."""
    n = next(_addresses)
    return f"10.77.{(n >> 8) & 255}.{n & 255}"


def poll(predicate, attempts: int = 100, pause: float = 0.1):
    """Calls `predicate` up to `attempts` times with `pause` between calls; returns its first truthy result, or
    None. Used to wait for a state another process reaches by itself (fallback, recovery, ejection)."""
    for _ in range(attempts):
        result = predicate()
        if result:
            return result
        time.sleep(pause)  # waiting on another process's state, bounded by `attempts`
    return None


# ---------------------------------------------------------------------------------------------------------------
# Redis


@dataclass
class RedisServer:
    """A redis-server on 127.0.0.1:`port` with no persistence. `start()` after `stop()` reuses the port."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    proc: Proc | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "RedisServer":
        binary = require_redis()
        self.starts += 1
        self.proc = Proc(
            f"redis-{self.port}-{self.starts}",
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--protected-mode", "yes", "--dir", str(self.log_dir)],
            self.log_dir,
        ).start(r"Ready to accept connections")
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def cli(self, *args: str) -> str:
        """`redis-cli -p PORT ARGS...`; fails the test if redis-cli fails."""
        cli = shutil.which("redis-cli")
        if cli is None:
            pytest.skip("redis-cli is not installed")
        r = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True, text=True,
                           timeout=REQUEST_TIMEOUT)
        assert r.returncode == 0, f"redis-cli {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout

    def command_calls(self) -> dict[str, int]:
        """Calls per command since start, from `INFO commandstats` (e.g. {"evalsha": 42, "time": 0})."""
        calls = {}
        for m in re.finditer(r"^cmdstat_([^:]+):calls=(\d+)", self.cli("INFO", "commandstats"), re.M):
            calls[m.group(1)] = int(m.group(2))
        return calls


# ---------------------------------------------------------------------------------------------------------------
# Backends


@dataclass
class Backend:
    name: str
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: the backend dies with whatever it is streaming."""
        if self.proc.popen is not None and self.proc.popen.poll() is None:
            self.proc.popen.send_signal(signal.SIGKILL)
            self.proc.popen.wait(timeout=10)
        self.proc.stop()


def start_backend(binaries, log_dir: Path, name: str, *, models: tuple[str, ...] = (), loaded: tuple[str, ...] = (),
                  tokens: int = 6, interval_ms: int = 2, port: int = 0) -> Backend:
    """`fake-ollama --name NAME` on 127.0.0.1 (`--model`/`--loaded` repeated as given)."""
    argv = [str(binaries["fake-ollama"]), "--listen", f"127.0.0.1:{port}", "--name", name,
            "--tokens", str(tokens), "--interval-ms", str(interval_ms)]
    for m in models:
        argv += ["--model", m]
    for m in loaded:
        argv += ["--loaded", m]
    proc = Proc(f"backend-{name}-{next(_addresses)}", argv, log_dir).start(
        r"listening on http://127\.0\.0\.1:(\d+)")
    port = int(proc.match.group(1))
    wait_for_port("127.0.0.1", port)
    return Backend(name, proc, port)


# ---------------------------------------------------------------------------------------------------------------
# Metrics


class Metrics:
    """One scrape of Prometheus text: `get(name, **labels)` is the sum over series whose labels include the given
    ones (None when no series matches)."""

    _line = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
    _label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text: str):
        self.text = text
        self.series: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = self._line.match(line)
            if m:
                labels = dict(self._label.findall(m.group(2) or ""))
                self.series.append((m.group(1), labels, float(m.group(3))))

    def get(self, name: str, **labels: str) -> float | None:
        values = [v for n, ls, v in self.series if n == name and all(ls.get(k) == w for k, w in labels.items())]
        return sum(values) if values else None

    def labels(self, name: str, label: str) -> dict[str, float]:
        """{label value: value} for every series of `name`."""
        return {ls[label]: v for n, ls, v in self.series if n == name and label in ls}


# ---------------------------------------------------------------------------------------------------------------
# Tollgates


@dataclass
class Instance:
    name: str
    proc: Proc
    port: int
    metrics_port: int

    def metrics(self) -> Metrics:
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            body = r.read().decode()
            assert r.status == 200, f"{self.name} /metrics: {r.status} {body[:200]}"
            return Metrics(body)
        finally:
            conn.close()

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get(name, **labels)

    @property
    def alive(self) -> bool:
        return self.proc.popen is not None and self.proc.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no release of anything it holds in Redis."""
        if self.alive:
            self.proc.popen.send_signal(signal.SIGKILL)
            self.proc.popen.wait(timeout=10)
        self.proc.stop()


def start_tollgate(binaries, users: Path, log_dir: Path, name: str, upstreams: list[str], redis: RedisServer | None,
                   *extra: str, fleet_size: int = 3) -> Instance:
    argv = [str(binaries["tollgate"]), "serve", "--listen-plain", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
            "--users", str(users), "--log", "none", "--workers", "1", "--trusted-proxy", "127.0.0.1/32"]
    for u in upstreams:
        argv += ["--upstream", u]
    if redis is not None:
        argv += ["--redis", redis.url, "--fleet-size", str(fleet_size)]
    argv += conftest.own_state_dir(extra, log_dir, name) + list(extra)
    proc = Proc(name, argv, log_dir).start(
        r"serving http://127\.0\.0\.1:(\d+)[\s\S]*metrics on http://127\.0\.0\.1:(\d+)/metrics")
    port, metrics_port = int(proc.match.group(1)), int(proc.match.group(2))
    wait_for_port("127.0.0.1", port)
    return Instance(name, proc, port, metrics_port)


@dataclass
class Fleet:
    """What `start_fleet` started; `stop()` ends all of it (idempotent)."""

    redis: RedisServer | None
    backends: list[Backend]
    instances: list[Instance]

    def stop(self) -> None:
        for p in self.instances:
            p.proc.stop()
        for b in self.backends:
            b.proc.stop()
        if self.redis is not None:
            self.redis.stop()

    def sum_metric(self, name: str, **labels: str) -> float:
        """The metric summed over the instances still running (missing series count 0)."""
        return sum(i.metric(name, **labels) or 0 for i in self.instances if i.alive)

    def wait_all(self, name: str, value: float, *, trigger=None, attempts: int = 150, **labels: str) -> bool:
        """Polls every running instance until `name{labels}` equals `value` on all of them (bounded). `trigger`,
        when given, runs before each attempt (a request, so a lazily detected state gets detected)."""
        def check():
            if trigger is not None:
                trigger()
            return all(i.metric(name, **labels) == value for i in self.instances if i.alive)
        return poll(check, attempts=attempts) is not None


def start_fleet(binaries, users: Path, log_dir: Path, *, instances: int = 3, backends: list[Backend] | None = None,
                redis: bool = True, extra: tuple[str, ...] = ()) -> Fleet:
    """A redis-server (unless `redis` is false), the given backends (default: one fake-ollama "b1") and `instances`
    Tollgates sharing both, with `--fleet-size` equal to `instances` and `extra` flags."""
    fleet = Fleet(None, [], [])
    try:
        if redis:
            fleet.redis = RedisServer(log_dir).start()
        fleet.backends = backends if backends is not None else [start_backend(binaries, log_dir, "b1")]
        upstreams = [b.url for b in fleet.backends]
        tag = next(_addresses)
        for k in range(instances):
            fleet.instances.append(start_tollgate(binaries, users, log_dir, f"tollgate-{tag}-{k + 1}", upstreams,
                                                  fleet.redis, *extra, fleet_size=instances))
    except BaseException:
        fleet.stop()
        raise
    return fleet


# ---------------------------------------------------------------------------------------------------------------
# Clients


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: float  # time.monotonic() just before the request was written
    received: float  # time.monotonic() once the whole response was read
    instance: int

    def json(self):
        return json.loads(self.body)


class Client:
    """Keep-alive connections, one per instance, from one client address (X-Forwarded-For when `address` is
    given). `send`/`receive` split a request so several can be in flight at once on different connections."""

    def __init__(self, instances: list[Instance], address: str | None = None, connections_per_instance: int = 1,
                 auth: str = AUTH):
        self.instances = instances
        self.address = address
        self.auth = auth
        self.conns = [http.client.HTTPConnection("127.0.0.1", inst.port, timeout=REQUEST_TIMEOUT)
                      for inst in instances for _ in range(connections_per_instance)]
        self.owner = [k for k in range(len(instances)) for _ in range(connections_per_instance)]
        for c in self.conns:
            c.connect()
        self._sent: dict[int, float] = {}

    def headers(self, body: bytes | None = None) -> dict[str, str]:
        h = {"Authorization": self.auth, "Host": "localhost"}
        if self.address is not None:
            h["X-Forwarded-For"] = self.address
        if body is not None:
            h["Content-Type"] = "application/json"
        return h

    def send(self, conn: int, method: str = "GET", path: str = "/api/version", body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        self._sent[conn] = time.monotonic()
        self.conns[conn].request(method, path, body=data, headers=self.headers(data))

    def receive(self, conn: int) -> Reply:
        r = self.conns[conn].getresponse()
        data = r.read()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data, self._sent.pop(conn),
                     time.monotonic(), self.owner[conn])

    def request(self, conn: int, method: str = "GET", path: str = "/api/version", body: dict | None = None) -> Reply:
        self.send(conn, method, path, body)
        return self.receive(conn)

    def close(self) -> None:
        for c in self.conns:
            c.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def one_request(instance: Instance, method: str = "GET", path: str = "/api/version", body: dict | None = None,
                address: str | None = None, auth: str = AUTH) -> Reply:
    with Client([instance], address, auth=auth) as c:
        return c.request(0, method, path, body)


def generate_body(model: str = MODEL, tokens: int | None = None, stream: bool = False) -> dict:
    body = {"model": model, "prompt": "hello", "stream": stream}
    if tokens is not None:
        body["options"] = {"num_predict": tokens}
    return body


class Stream:
    """A streamed `POST /api/generate` on its own socket. `head()` reads the status line and headers;
    `read_lines(n)` reads until n NDJSON lines have arrived; `finish()` reads to the end and says whether the
    chunked body ended cleanly (terminating chunk and a `"done":true` line) or was cut off."""

    def __init__(self, instance: Instance, tokens: int, model: str = MODEL, address: str | None = None):
        self.sock = socket.create_connection(("127.0.0.1", instance.port), timeout=REQUEST_TIMEOUT)
        data = json.dumps(generate_body(model, tokens, stream=True)).encode()
        xff = f"X-Forwarded-For: {address}\r\n" if address else ""
        self.sock.sendall(f"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nAuthorization: {AUTH}\r\n{xff}"
                          f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        self.raw = b""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body_start = 0

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.raw += chunk
        return bool(chunk)

    def head(self) -> "Stream":
        while b"\r\n\r\n" not in self.raw:
            assert self._more(), f"connection closed before the response head: {self.raw!r}"
        head, _, _ = self.raw.partition(b"\r\n\r\n")
        self.body_start = len(head) + 4
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        return self

    @property
    def body(self) -> bytes:
        return self.raw[self.body_start:]

    def read_lines(self, n: int) -> "Stream":
        while self.body.count(b'"done":') < n:
            assert self._more(), f"stream ended after {self.body!r}"
        return self

    def finish(self) -> bool:
        """Reads until the server closes or the chunked body's last chunk; True for a clean, complete stream."""
        while not self.raw.endswith(b"\r\n0\r\n\r\n"):
            try:
                if not self._more():
                    break
            except ConnectionResetError:
                break
        self.sock.close()
        return self.raw.endswith(b"\r\n0\r\n\r\n") and b'"done":true' in self.body

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------------------------------------------------
# Fixtures (import them into a test module by name)


@pytest.fixture
def fleets(binaries, users_file, tmp_path):
    """A factory: `fleets(**start_fleet options)` starts a fleet that is stopped when the test ends, together with
    any other process the test started through conftest's `Proc` (backends started on their own)."""
    require_redis()
    started: list[Fleet] = []
    first = len(conftest._processes)

    def make(**options) -> Fleet:
        fleet = start_fleet(binaries, users_file, tmp_path, **options)
        started.append(fleet)
        return fleet

    yield make
    for fleet in started:
        fleet.stop()
    for proc in conftest._processes[first:]:
        proc.stop()


@pytest.fixture
def say(capsys):
    """Prints a figure to the terminal even under `pytest -q` (the counts the fleet tests measure)."""
    def write(line: str) -> None:
        with capsys.disabled():
            print(f"\n    fleet: {line}", end="")
    return write
