"""The official `openai` client with base_url=https://localhost:PORT/v1 and api_key="user:password" (sent as
`Authorization: Bearer user:password`), compared with the same calls made to fake-ollama's /v1 directly."""

import httpx2  # openai 3.x is built on httpx2; its http_client= must be an httpx2.Client
import openai
import pytest

from conftest import MODEL, PASSWORD, TOKENS, USER, WRONG_PASSWORD, until_status

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]
EXPECTED_TEXT = "".join(f"tok{i} " for i in range(TOKENS))


def proxied(server, tls, key=f"{USER}:{PASSWORD}") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1",
        api_key=key,
        http_client=httpx2.Client(verify=tls.context(), timeout=30),
        max_retries=0,
    )


@pytest.fixture
def client(tollgate, tls):
    with proxied(tollgate, tls) as c:
        yield c


@pytest.fixture
def direct(fake_ollama):
    with openai.OpenAI(base_url=f"{fake_ollama.url}/v1", api_key="unused", max_retries=0, timeout=30) as c:
        yield c


def test_chat_completion(client, direct):
    got = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    want = direct.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert got.choices[0].message.content == EXPECTED_TEXT
    assert got.choices[0].finish_reason == "stop"
    assert got.model_dump() == want.model_dump()


def test_chat_completion_stream(client, direct):
    with client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as s:
        got = [c.model_dump() for c in s]
    with direct.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as s:
        want = [c.model_dump() for c in s]
    assert len(got) > TOKENS  # one chunk per token plus the finish chunk; [DONE] ends the iteration
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in got) == EXPECTED_TEXT
    assert got[-1]["choices"][0]["finish_reason"] == "stop"
    assert got == want


def test_models(client, direct):
    got = [m.model_dump() for m in client.models.list()]
    assert [m["id"] for m in got] == [MODEL]
    assert got == [m.model_dump() for m in direct.models.list()]
    assert client.models.retrieve(MODEL).model_dump() == direct.models.retrieve(MODEL).model_dump()


def test_wrong_key_is_authentication_error(tollgate, tls):
    with proxied(tollgate, tls, key=f"{USER}:{WRONG_PASSWORD}") as c:
        with pytest.raises(openai.AuthenticationError) as e:
            c.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert e.value.status_code == 401
        # OpenAI's error shape, so the SDK can read it: {"error": {"message", "type", "param", "code"}}
        assert isinstance(e.value.body, dict) and e.value.body.get("message"), e.value.body
        assert "password" in e.value.message.lower()

        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        with pytest.raises(openai.AuthenticationError):
            c.models.list()


def test_key_without_password_is_authentication_error(tollgate, tls):
    with proxied(tollgate, tls, key="sk-not-a-user-password-pair") as c:
        with pytest.raises(openai.AuthenticationError):
            c.models.list()


def test_rate_limited_is_rate_limit_error(tollgate_limited, tls):
    with proxied(tollgate_limited, tls) as c:
        err = until_status(lambda: c.chat.completions.create(model=MODEL, messages=MESSAGES),
                           lambda e: isinstance(e, openai.RateLimitError))
        assert err.status_code == 429
        assert isinstance(err.body, dict) and err.body.get("message"), err.body
        retry_after = err.response.headers.get("retry-after")
        assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1, retry_after

        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)


def _raw_stream(url, path, body, verify, key=None) -> bytes:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx2.Client(verify=verify, timeout=30) as h:
        r = h.post(f"{url}{path}", json=body, headers=headers)
        assert r.status_code == 200, r.text
        return r.content


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {"model": MODEL, "messages": MESSAGES, "stream": True}),
    ("/v1/completions", {"model": MODEL, "prompt": "Why is the sky blue?", "stream": True}),
])
def test_stream_without_usage_is_byte_identical(tollgate, fake_ollama, tls, path, body):
    # Tollgate asks Ollama for the usage (to count the tokens) and removes what that adds: the client receives
    # exactly the bytes a direct request gets.
    got = _raw_stream(tollgate.url, path, body, tls.context(), key=f"{USER}:{PASSWORD}")
    want = _raw_stream(fake_ollama.url, path, body, True)
    assert b'"usage"' not in got
    assert got == want


def test_stream_with_usage_gets_it_once(client, direct):
    kwargs = dict(model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    with client.chat.completions.create(**kwargs) as s:
        got = [c.model_dump() for c in s]
    with direct.chat.completions.create(**kwargs) as s:
        want = [c.model_dump() for c in s]
    assert got == want
    usages = [c["usage"] for c in got if c.get("usage")]
    assert len(usages) == 1 and usages[0]["completion_tokens"] == TOKENS and usages[0]["prompt_tokens"] > 0
    assert got[-1]["choices"] == []


def test_completion_stream_without_usage(client, direct):
    with client.completions.create(model=MODEL, prompt="Why is the sky blue?", stream=True) as s:
        got = [c.model_dump() for c in s]
    with direct.completions.create(model=MODEL, prompt="Why is the sky blue?", stream=True) as s:
        want = [c.model_dump() for c in s]
    assert got == want
    assert all(c.get("usage") is None for c in got)
