"""The official `ollama` Python client against Tollgate over TLS, compared with the same calls made to fake-ollama
directly. Basic comes from `auth=httpx.BasicAuth(...)` (ollama.Client hands its keyword arguments to
httpx.Client); Bearer from the OLLAMA_API_KEY environment variable, which the client reads when it is built."""

import importlib
import inspect

import httpx
import ollama
import pytest

from conftest import MODEL, PASSWORD, TOKENS, USER, WRONG_PASSWORD, until_status, without_timing

# `ollama._client` is shadowed by the package's default Client instance; reach the module itself.
_client_module = importlib.import_module("ollama._client")
CLIENT_READS_API_KEY = "OLLAMA_API_KEY" in inspect.getsource(_client_module.BaseClient.__init__)
OLLAMA_VERSION = getattr(_client_module, "__version__", "?")
MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


@pytest.fixture
def direct(fake_ollama):
    with ollama.Client(host=fake_ollama.url, timeout=30) as c:
        yield c


def proxied(server, tls, auth_mode: str, password: str = PASSWORD, monkeypatch=None) -> ollama.Client:
    if auth_mode == "basic":
        return ollama.Client(host=server.url, auth=httpx.BasicAuth(USER, password), verify=tls.context(), timeout=30)
    if auth_mode == "bearer-env":
        if not CLIENT_READS_API_KEY:
            pytest.skip(f"ollama {OLLAMA_VERSION} does not read "
                        "OLLAMA_API_KEY (no such code in ollama._client.BaseClient.__init__)")
        monkeypatch.setenv("OLLAMA_API_KEY", f"{USER}:{password}")
        return ollama.Client(host=server.url, verify=tls.context(), timeout=30)
    if auth_mode == "none":
        return ollama.Client(host=server.url, verify=tls.context(), timeout=30)
    raise AssertionError(auth_mode)


@pytest.fixture(params=["basic", "bearer-env"])
def client(request, tollgate, tls, monkeypatch):
    with proxied(tollgate, tls, request.param, monkeypatch=monkeypatch) as c:
        yield c


def dumps(items):
    return [without_timing(i.model_dump()) for i in items]


def test_bearer_header_comes_from_env(tollgate, tls, monkeypatch):
    c = proxied(tollgate, tls, "bearer-env", monkeypatch=monkeypatch)
    assert c._client.headers["authorization"] == f"Bearer {USER}:{PASSWORD}"
    c.close()


def test_list(client, direct):
    got = client.list()
    assert [m.model for m in got.models] == [MODEL]
    assert got.model_dump() == direct.list().model_dump()


def test_generate(client, direct):
    got = client.generate(model=MODEL, prompt="Why is the sky blue?")
    want = direct.generate(model=MODEL, prompt="Why is the sky blue?")
    assert got.done and got.eval_count == TOKENS
    assert got.response == "".join(f"tok{i} " for i in range(TOKENS))
    assert without_timing(got.model_dump()) == without_timing(want.model_dump())


def test_generate_stream(client, direct):
    got = dumps(client.generate(model=MODEL, prompt="Why is the sky blue?", stream=True))
    want = dumps(direct.generate(model=MODEL, prompt="Why is the sky blue?", stream=True))
    assert len(got) == TOKENS + 1
    assert got[-1]["done"] is True and all(not g["done"] for g in got[:-1])
    assert got == want


def test_chat(client, direct):
    got = client.chat(model=MODEL, messages=MESSAGES)
    want = direct.chat(model=MODEL, messages=MESSAGES)
    assert got.message.role == "assistant" and got.message.content
    assert without_timing(got.model_dump()) == without_timing(want.model_dump())


def test_chat_stream(client, direct):
    got = dumps(client.chat(model=MODEL, messages=MESSAGES, stream=True))
    want = dumps(direct.chat(model=MODEL, messages=MESSAGES, stream=True))
    assert len(got) == TOKENS + 1
    assert "".join(g["message"]["content"] for g in got) == "".join(f"tok{i} " for i in range(TOKENS))
    assert got == want


@pytest.mark.parametrize("auth_mode", ["basic", "bearer-env"])
def test_wrong_password_is_401(auth_mode, tollgate, tls, monkeypatch):
    with proxied(tollgate, tls, auth_mode, password=WRONG_PASSWORD, monkeypatch=monkeypatch) as c:
        with pytest.raises(ollama.ResponseError) as e:
            c.list()
        assert e.value.status_code == 401
        # The client found Ollama's {"error": "..."} shape and took the message out of it.
        assert isinstance(e.value.error, str) and "password" in e.value.error.lower()
        assert not e.value.error.lstrip().startswith("{")

        with pytest.raises(ollama.ResponseError) as e:
            for _ in c.generate(model=MODEL, prompt="hi", stream=True):
                pytest.fail("a chunk arrived despite the wrong password")
        assert e.value.status_code == 401


def test_no_credentials_is_401(tollgate, tls):
    with proxied(tollgate, tls, "none") as c:
        with pytest.raises(ollama.ResponseError) as e:
            c.chat(model=MODEL, messages=MESSAGES)
        assert e.value.status_code == 401


def test_rate_limited_is_429(tollgate_limited, tls):
    with proxied(tollgate_limited, tls, "basic") as c:
        err = until_status(c.list, lambda e: isinstance(e, ollama.ResponseError) and e.status_code == 429)
        assert isinstance(err.error, str) and err.error and not err.error.lstrip().startswith("{")
        with pytest.raises(ollama.ResponseError) as e:
            for _ in c.generate(model=MODEL, prompt="hi", stream=True):
                pytest.fail("a chunk arrived despite the rate limit")
        assert e.value.status_code == 429
