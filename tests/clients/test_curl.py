"""curl against Tollgate with the test CA (`--cacert`), compared with curl against fake-ollama directly."""

import json
import shutil
import subprocess

import pytest

from conftest import MODEL, PASSWORD, TOKENS, USER, WRONG_PASSWORD, until_status, without_timing

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

GENERATE = json.dumps({"model": MODEL, "prompt": "Why is the sky blue?"})


class CurlStatus(Exception):
    def __init__(self, status: int, headers: str, body: str):
        super().__init__(f"HTTP {status}")
        self.status, self.headers, self.body = status, headers, body


def curl(*args: str, tls=None) -> tuple[int, str, str]:
    """Runs curl, returns (status, response headers, body)."""
    argv = ["curl", "-sS", "--max-time", "30", "-D", "-", "-o", "-"]
    if tls is not None:
        argv += ["--cacert", str(tls.ca)]
    # bytes, not text=True: universal newlines would turn the head's CRLFs into LFs
    r = subprocess.run([*argv, *args], capture_output=True, timeout=60)
    assert r.returncode == 0, f"curl exited {r.returncode}: {r.stderr.decode(errors='replace')}"
    head, _, body = r.stdout.decode().partition("\r\n\r\n")
    status = int(head.split(" ", 2)[1])
    return status, head, body


def header(head: str, name: str) -> str | None:
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


@pytest.mark.parametrize(
    "auth",
    [["-u", f"{USER}:{PASSWORD}"], ["-H", f"Authorization: Bearer {USER}:{PASSWORD}"],
     ["-H", f"x-api-key: {USER}:{PASSWORD}"]],
    ids=["basic", "bearer", "x-api-key"],
)
def test_tags(auth, tollgate, fake_ollama, tls):
    status, head, body = curl(*auth, f"{tollgate.url}/api/tags", tls=tls)
    assert status == 200, body
    d_status, _, d_body = curl(f"{fake_ollama.url}/api/tags")
    assert d_status == 200
    assert json.loads(body) == json.loads(d_body)
    assert header(head, "X-Request-Id")


def test_generate_streams_ndjson(tollgate, fake_ollama, tls):
    status, head, body = curl("-N", "-u", f"{USER}:{PASSWORD}", f"{tollgate.url}/api/generate", "-d", GENERATE,
                              tls=tls)
    assert status == 200, body
    assert header(head, "Content-Type").startswith("application/x-ndjson")
    _, _, d_body = curl("-N", f"{fake_ollama.url}/api/generate", "-d", GENERATE)
    assert body.endswith("\n")
    lines = body.splitlines()
    assert len(lines) == TOKENS + 1
    got = [without_timing(json.loads(line)) for line in lines]
    assert got == [without_timing(json.loads(line)) for line in d_body.splitlines()]
    assert got[-1]["done"] is True


@pytest.mark.parametrize("path,shape", [("/api/tags", "ollama"), ("/v1/models", "openai")])
def test_wrong_password_is_401(path, shape, tollgate, tls):
    status, head, body = curl("-u", f"{USER}:{WRONG_PASSWORD}", f"{tollgate.url}{path}", tls=tls)
    assert status == 401
    assert header(head, "WWW-Authenticate").lower().startswith("basic realm=")
    assert header(head, "Content-Type").startswith("application/json")
    err = json.loads(body)["error"]
    message = err if shape == "ollama" else err["message"]
    assert isinstance(message, str) and message


def test_no_credentials_is_401(tollgate, tls):
    status, head, body = curl(f"{tollgate.url}/api/tags", tls=tls)
    assert status == 401 and header(head, "WWW-Authenticate")
    assert json.loads(body)["error"]


def test_rate_limited_is_429(tollgate_limited, tls):
    def call():
        status, head, body = curl("-u", f"{USER}:{PASSWORD}", f"{tollgate_limited.url}/api/tags", tls=tls)
        if status != 200:
            raise CurlStatus(status, head, body)
        return status

    err = until_status(call, lambda e: isinstance(e, CurlStatus) and e.status == 429)
    retry_after = header(err.headers, "Retry-After")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1, err.headers
    assert json.loads(err.body)["error"]
