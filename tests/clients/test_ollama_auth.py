"""Logins with the ollama CLI's own keys (OLLAMA_AUTH) through Tollgate, over real TLS.

The real `ollama` binary is not installed where these tests run, so tests/ollama-signer (Go, golang.org/x/crypto/ssh
as Ollama uses it) makes the key pair the CLI keeps in ~/.ollama and signs each request exactly as the CLI does:
`Authorization: <base64 ssh-ed25519 key>:<base64 signature of "METHOD,PATH?ts=TS">`, with `ts` in the query.
Each test checks what a user sees (status, the `{"error": ...}` body of Ollama's API) and what the access log says
(the user, `"login": "ollama-key"` and the key's SHA-256 fingerprint).

The signer is built by .ci/run into .build/ollama-signer/ollama-signer (or point SIGNER_BIN at one); outside CI the
tests skip when it is missing, under CI=true (or with SIGNER_BIN set) that is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, USER, start_tollgate, wait_until


def signer_binary() -> Path:
    p = Path(os.environ.get("SIGNER_BIN", REPO / ".build/ollama-signer/ollama-signer"))
    if not p.is_absolute():
        p = REPO / p
    if not os.access(p, os.X_OK):
        msg = (f"ollama signer {p} is missing: build it with `GO111MODULE=off GOPATH=/usr/share/gocode go build "
               "-o .build/ollama-signer/ollama-signer ./tests/ollama-signer` (packages golang-go, "
               "golang-golang-x-crypto-dev)")
        if os.environ.get("CI") == "true" or "SIGNER_BIN" in os.environ:
            pytest.fail(msg)
        pytest.skip(msg)
    return p


class Key:
    """One ollama CLI key pair in its own directory, as the CLI keeps it in ~/.ollama."""

    def __init__(self, signer: Path, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([str(signer), "keygen", str(directory)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        self.signer = signer
        self.private = directory / "id_ed25519"
        self.public_line = (directory / "id_ed25519.pub").read_text().strip()
        blob = base64.b64decode(self.public_line.split()[1])
        # As `ssh-keygen -l` prints it.
        self.fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")

    def sign(self, method: str, path: str, ts: int | None = None) -> dict:
        argv = [str(self.signer), "sign", "-key", str(self.private), "-method", method, "-path", path]
        if ts is not None:
            argv += ["-ts", str(ts)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    signer = signer_binary()
    d = tmp_path_factory.mktemp("ollama-keys")
    return {name: Key(signer, d / name) for name in ("alice", "stranger", "newcomer", "ghost")}


@pytest.fixture(scope="module")
def authorized_keys(keys, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("authorized") / "authorized_keys"
    path.write_text(
        "# ollama CLI keys: the line from ~/.ollama/id_ed25519.pub, then the Tollgate user\n"
        f"{keys['alice'].public_line} {USER}\n"
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC alice\n"
        "# a user the users file does not have: the key does not log in\n"
        f"{keys['ghost'].public_line} ghost\n"
    )
    return path


@pytest.fixture(scope="module")
def gate(binaries, tls, users_file, fake_ollama, log_dir, authorized_keys):
    server = start_tollgate(binaries, tls, users_file, fake_ollama, log_dir, "tollgate-ollama-keys",
                            "--rate", "0", "--authorized-keys", str(authorized_keys), "--log", "json")
    yield server
    server.proc.stop()


def connect(gate, tls) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("localhost", gate.port, context=tls.context(), timeout=30)


def send(conn, method: str, path: str, signed: dict | None, body: dict | None = None):
    """One request as the CLI sends it: the path with ?ts=..., the signed Authorization, a JSON body."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    target = path
    if signed is not None:
        headers["Authorization"] = signed["authorization"]
        target = f"{path}?{signed['query']}"
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, target, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def log_lines(gate) -> list[dict]:
    lines = []
    for line in gate.proc.stdout_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def logged(gate, predicate) -> dict:
    """The last access-log line matching `predicate`, once it has been written."""
    assert wait_until(lambda: any(predicate(l) for l in log_lines(gate))), "no matching access-log line"
    return [l for l in log_lines(gate) if predicate(l)][-1]


# Every failed signed login says the same (nothing to probe keys or users with); the access log says why.
REFUSAL = ("ollama key login refused: the key must be authorized here, the request signed for this method and path, "
           "and the client's clock within 5 minutes of the server's")


def test_signed_tags_and_generate_are_served_and_logged(gate, tls, keys):
    key = keys["alice"]
    conn = connect(gate, tls)
    status, body = send(conn, "GET", "/api/tags", key.sign("GET", "/api/tags"))
    assert status == 200, body
    assert "models" in json.loads(body)
    status, body = send(conn, "POST", "/api/generate", key.sign("POST", "/api/generate"),
                        {"model": "mistral:7b", "prompt": "hi", "stream": False})
    assert status == 200, body
    assert json.loads(body)["done"] is True
    conn.close()
    line = logged(gate, lambda l: l["path"] == "/api/generate" and l["status"] == 200)
    assert line["user"] == USER
    assert line["auth"] == "allowed"
    assert line["login"] == "ollama-key"
    assert line["ollama_key"] == key.fingerprint


def test_replay_from_another_connection_is_refused(gate, tls, keys):
    signed = keys["alice"].sign("GET", "/api/ps")
    first = connect(gate, tls)
    assert send(first, "GET", "/api/ps", signed)[0] == 200
    # The CLI may send the same request twice within a second on its connection: same signature, accepted.
    assert send(first, "GET", "/api/ps", signed)[0] == 200
    first.close()
    other = connect(gate, tls)
    status, body = send(other, "GET", "/api/ps", signed)
    other.close()
    assert status == 401
    assert json.loads(body)["error"] == REFUSAL


def test_stale_timestamp_is_refused(gate, tls, keys):
    conn = connect(gate, tls)
    status, body = send(conn, "GET", "/api/tags", keys["alice"].sign("GET", "/api/tags", ts=int(time.time()) - 600))
    conn.close()
    assert status == 401
    assert json.loads(body)["error"] == REFUSAL
    line = logged(gate, lambda l: l.get("ollama_key_refused") == "stale")
    assert line["status"] == 401 and line["user"] == USER


def test_key_not_in_the_file_is_refused_in_ollama_error_shape(gate, tls, keys):
    conn = connect(gate, tls)
    status, body = send(conn, "GET", "/api/tags", keys["stranger"].sign("GET", "/api/tags"))
    conn.close()
    assert status == 401
    error = json.loads(body)
    assert set(error) == {"error"}
    assert error["error"] == REFUSAL
    line = logged(gate, lambda l: l.get("ollama_key") == keys["stranger"].fingerprint)
    assert line["status"] == 401 and line["auth"] == "denied"
    assert line["ollama_key_refused"] == "unknown_key"


def test_key_of_a_user_not_in_the_users_file_is_refused(gate, tls, keys):
    conn = connect(gate, tls)
    status, body = send(conn, "GET", "/api/tags", keys["ghost"].sign("GET", "/api/tags"))
    conn.close()
    assert status == 401
    assert json.loads(body)["error"] == REFUSAL
    line = logged(gate, lambda l: l.get("ollama_key") == keys["ghost"].fingerprint)
    assert line["ollama_key_refused"] == "unknown_user"


def test_signature_for_another_path_is_refused(gate, tls, keys):
    conn = connect(gate, tls)
    status, body = send(conn, "GET", "/api/version", keys["alice"].sign("GET", "/api/tags"))
    conn.close()
    assert status == 401
    assert json.loads(body)["error"] == REFUSAL


def test_added_key_works_without_a_restart(gate, tls, keys, authorized_keys):
    key = keys["newcomer"]
    reloads = gate.proc.stderr_path.read_text(errors="replace").count("reloaded")
    with open(authorized_keys, "a") as f:
        f.write(f"{key.public_line} {USER}\n")
    # Waits for the watcher's reload line rather than retrying the key: each refusal would count as a failed login.
    assert wait_until(lambda: gate.proc.stderr_path.read_text(errors="replace").count("reloaded") > reloads), \
        "no reload after the file changed"
    conn = connect(gate, tls)
    status, body = send(conn, "GET", "/api/tags", key.sign("GET", "/api/tags"))
    conn.close()
    assert status == 200, body
