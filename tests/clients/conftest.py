"""Session fixtures for the real-client and TLS-audit checks.

Starts, once per session: a test CA and a `localhost`/127.0.0.1 leaf (EC P-256, made with the openssl CLI), a
users file holding one known user, `fake-ollama`, and two Tollgates in front of it (one with the rate limit off,
one that allows a client address a single request and then answers 429). The binaries are not built here: they
are taken from $TOLLGATE_BIN_DIR (default .build/debug, where `swift build` puts them).

Every process is stopped at the end with SIGTERM, then SIGKILL after a bound. Its stdout and stderr go to files;
when a test fails, their tails are attached to the report.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

USER = "alice"
PASSWORD = "Tollgate-test-pw-7"
WRONG_PASSWORD = "not-the-password"
MODEL = "mistral:7b"
TOKENS = 6

START_TIMEOUT = 30.0  # seconds a process may take to print its ready line (debug builds on a busy machine)
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL

_processes: list["Proc"] = []


def bin_dir() -> Path:
    d = Path(os.environ.get("TOLLGATE_BIN_DIR", ".build/debug"))
    return d if d.is_absolute() else REPO / d


@dataclass
class Proc:
    """A started binary whose output goes to files, ready once a line matching `ready` appears."""

    name: str
    argv: list[str]
    log_dir: Path
    popen: subprocess.Popen | None = None
    match: re.Match | None = None
    returncode: int | None = None
    stop_note: str = ""
    _files: list = field(default_factory=list)

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.name}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.name}.stderr"

    def start(self, ready: str) -> "Proc":
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        self._files = [out, err]
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.log_dir)
        _processes.append(self)
        pattern = re.compile(ready)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for path in (self.stdout_path, self.stderr_path):
                m = pattern.search(path.read_text(errors="replace"))
                if m:
                    self.match = m
                    return self
            if self.popen.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.popen.returncode} before it was ready\n{self.logs()}")
            time.sleep(0.02)  # polling for readiness, bounded by the deadline
        self.stop()
        pytest.fail(f"{self.name} printed no line matching {ready!r} within {START_TIMEOUT} s\n{self.logs()}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT. Returns the exit status."""
        if self.popen is None or self.returncode is not None:
            return self.returncode
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.stop_note = f"did not exit within {STOP_TIMEOUT} s of SIGTERM; killed"
                self.popen.kill()
                self.popen.wait(timeout=STOP_TIMEOUT)
        self.returncode = self.popen.returncode
        for f in self._files:
            f.close()
        return self.returncode

    def logs(self, limit: int = 4000) -> str:
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                text = path.read_text(errors="replace")
                if text:
                    parts.append(f"--- {path.name} (last {limit} chars) ---\n{text[-limit:]}")
        return "\n".join(parts) or f"--- {self.name}: no output ---"


def wait_for_port(host: str, port: int, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # polling for readiness, bounded by the deadline


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for p in _processes:
            report.sections.append((f"{p.name} output", p.logs()))


# ---------------------------------------------------------------------------------------------------------------
# Binaries, certificates, users


@pytest.fixture(scope="session")
def binaries() -> dict[str, Path]:
    d = bin_dir()
    found = {name: d / name for name in ("tollgate", "fake-ollama")}
    missing = [str(p) for p in found.values() if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"missing binaries {missing}: run `swift build` first, or point TOLLGATE_BIN_DIR at the directory "
            "holding tollgate and fake-ollama"
        )
    return found


@dataclass
class TLSFiles:
    dir: Path
    ca: Path
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """A client context that trusts only the test CA (hostname checking on)."""
        return ssl.create_default_context(cafile=str(self.ca))


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> TLSFiles:
    d = tmp_path_factory.mktemp("tls")
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "3", "-subj", "/CN=Tollgate Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", "ca.pem", cwd=d,
    )
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key", cwd=d)
    _openssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=localhost", "-out", "leaf.csr", cwd=d)
    (d / "leaf.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "3", "-sha256", "-extfile", "leaf.ext", "-out", "leaf.pem", cwd=d,
    )
    return TLSFiles(dir=d, ca=d / "ca.pem", cert=d / "leaf.pem", key=d / "leaf.key")


@pytest.fixture(scope="session")
def users_file(binaries, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.htpasswd"
    r = subprocess.run(
        [str(binaries["tollgate"]), "users", "add", USER, "--file", str(path), "--password-stdin", "--cost", "4"],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
    )
    if r.returncode != 0 or not path.exists():
        pytest.fail(f"tollgate users add failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    assert path.read_text().startswith(f"{USER}:$2"), path.read_text()
    return path


# ---------------------------------------------------------------------------------------------------------------
# Servers


@dataclass
class Server:
    proc: Proc
    host: str
    port: int
    scheme: str

    @property
    def url(self) -> str:
        """For Tollgate: https://localhost:PORT, the name the leaf certificate is for."""
        host = "localhost" if self.scheme == "https" else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _start_fake_ollama(binaries, log_dir: Path) -> Server:
    proc = Proc(
        "fake-ollama",
        [str(binaries["fake-ollama"]), "--listen", "127.0.0.1:0", "--tokens", str(TOKENS), "--interval-ms", "2"],
        log_dir,
    ).start(r"fake-ollama listening on http://([0-9.]+):(\d+)")
    host, port = proc.match.group(1), int(proc.match.group(2))
    wait_for_port(host, port)
    return Server(proc, host, port, "http")


def own_state_dir(extra, parent: Path, name: str) -> list[str]:
    """`--state-dir` of a new directory under `parent` for the server `name`, unless `extra` names one. One running
    `tollgate serve` per state directory (a second one there refuses to start), and the default one, beside the
    users file, would be every server's that shares the session's users file."""
    if any(a == "--state-dir" or a.startswith("--state-dir=") for a in extra):
        return []
    return ["--state-dir", tempfile.mkdtemp(prefix=f"{name}-state-", dir=parent)]


def start_tollgate(binaries, tls: TLSFiles, users: Path, upstream: Server, log_dir: Path, name: str,
                   *extra: str) -> Server:
    """Starts a Tollgate on 127.0.0.1 with an OS-chosen port (it prints the bound one)."""
    proc = Proc(
        name,
        [
            str(binaries["tollgate"]), "serve",
            "--listen", "127.0.0.1:0",
            "--cert", str(tls.cert), "--key", str(tls.key),
            "--upstream", f"http://{upstream.host}:{upstream.port}",
            "--users", str(users),
            "--log", "none",
            *own_state_dir(extra, log_dir, name),
            *extra,
        ],
        log_dir,
    ).start(r"serving https://([0-9.]+):(\d+)")
    host, port = proc.match.group(1), int(proc.match.group(2))
    wait_for_port(host, port)
    return Server(proc, host, port, "https")


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def fake_ollama(binaries, log_dir):
    server = _start_fake_ollama(binaries, log_dir)
    yield server
    server.proc.stop()


@pytest.fixture(scope="session")
def tollgate(binaries, tls, users_file, fake_ollama, log_dir):
    """Tollgate with the per-address rate limit off (every test here comes from 127.0.0.1)."""
    server = start_tollgate(binaries, tls, users_file, fake_ollama, log_dir, "tollgate", "--rate", "0")
    yield server
    server.proc.stop()


@pytest.fixture(scope="session")
def tollgate_limited(binaries, tls, users_file, fake_ollama, log_dir):
    """Tollgate allowing one request per 100 s per address with no burst: after the first request from
    127.0.0.1 (whichever test makes it), every request gets 429 for the rest of the session."""
    server = start_tollgate(binaries, tls, users_file, fake_ollama, log_dir, "tollgate-limited",
                            "--rate", "0.01", "--burst", "0")
    yield server
    server.proc.stop()


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared by the test modules

TIMING_KEYS = {"created_at", "total_duration", "load_duration", "prompt_eval_duration", "eval_duration"}


def without_timing(value):
    """Drops the fields a real Ollama fills from the clock, recursively, so results compare by meaning."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def until_status(call, is_status, attempts: int = 3):
    """Calls `call` until it raises an exception for which `is_status` is true; returns that exception.
    Used for 429: the first request to the limited Tollgate in the session may still pass."""
    results = []
    for _ in range(attempts):
        try:
            results.append(call())
        except Exception as e:  # noqa: BLE001 - anything else is reported below
            if is_status(e):
                return e
            raise
    pytest.fail(f"no rejection in {attempts} back-to-back requests; got {results!r}")


# Figures a module wants shown even when its tests pass (test_oracle.py: cases sent, reached, refused), printed in
# the terminal summary so CI logs carry them without -s.
def pytest_configure(config):
    config.summary_lines = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = getattr(config, "summary_lines", [])
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)


def wait_until(predicate, timeout: float = 15.0) -> bool:
    """Polls `predicate` until it holds (True) or `timeout` seconds pass (False): waiting for a condition, never a
    bound on how fast anything is."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
