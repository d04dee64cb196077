"""The official `anthropic` client with base_url=https://localhost:PORT and api_key="user:password" (sent as
`x-api-key`), and the `openai` client's Responses API, each compared with the same calls made to fake-ollama
directly: Tollgate passes both APIs through unchanged, streamed or not."""

import anthropic
import httpx2  # anthropic and openai are built on httpx2; their http_client= must be an httpx2.Client
import openai
import pytest

from conftest import MODEL, PASSWORD, TOKENS, USER, WRONG_PASSWORD

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]
EXPECTED_TEXT = "".join(f"tok{i} " for i in range(TOKENS))


def proxied(server, tls, key=f"{USER}:{PASSWORD}") -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=server.url,
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
    with anthropic.Anthropic(base_url=fake_ollama.url, api_key="unused", max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
def responses_client(tollgate, tls):
    with openai.OpenAI(base_url=f"{tollgate.url}/v1", api_key=f"{USER}:{PASSWORD}",
                       http_client=httpx2.Client(verify=tls.context(), timeout=30), max_retries=0) as c:
        yield c


@pytest.fixture
def responses_direct(fake_ollama):
    with openai.OpenAI(base_url=f"{fake_ollama.url}/v1", api_key="unused", max_retries=0, timeout=30) as c:
        yield c


def test_message(client, direct):
    got = client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    want = direct.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert got.content[0].type == "text" and got.content[0].text == EXPECTED_TEXT
    assert got.stop_reason == "end_turn"
    assert got.usage.output_tokens == TOKENS and got.usage.input_tokens > 0
    assert got.model_dump() == want.model_dump()


def test_message_stream(client, direct):
    with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as s:
        got_events = [e.type for e in s]
        got = s.get_final_message()
    with direct.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as s:
        want_events = [e.type for e in s]
        want = s.get_final_message()
    assert got_events[0] == "message_start" and got_events[-1] == "message_stop"
    assert got_events.count("content_block_delta") == TOKENS
    assert "".join(b.text for b in got.content if b.type == "text") == EXPECTED_TEXT
    assert got.stop_reason == "end_turn" and got.usage.output_tokens == TOKENS
    assert got_events == want_events
    assert got.model_dump() == want.model_dump()


def test_max_tokens_cuts_the_message(client):
    got = client.messages.create(model=MODEL, max_tokens=2, messages=MESSAGES)
    assert got.stop_reason == "max_tokens"
    assert got.content[0].text == "tok0 tok1 "


def test_unknown_model_is_not_found(client):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="llama3", max_tokens=16, messages=MESSAGES)
    assert e.value.status_code == 404
    assert e.value.body["error"]["type"] == "not_found_error"


def test_wrong_key_is_authentication_error(tollgate, tls):
    with proxied(tollgate, tls, key=f"{USER}:{WRONG_PASSWORD}") as c:
        with pytest.raises(anthropic.AuthenticationError) as e:
            c.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
        assert e.value.status_code == 401
        # Anthropic's error shape, so the SDK can read it: {"type": "error", "error": {"type", "message"}}
        assert e.value.body["error"]["type"] == "authentication_error", e.value.body


def test_responses(responses_client, responses_direct):
    got = responses_client.responses.create(model=MODEL, input="Why is the sky blue?", instructions="Be brief.")
    want = responses_direct.responses.create(model=MODEL, input="Why is the sky blue?", instructions="Be brief.")
    assert got.output_text == EXPECTED_TEXT
    assert got.status == "completed" and got.usage.output_tokens == TOKENS
    assert got.model_dump() == want.model_dump()


def test_responses_stream(responses_client, responses_direct):
    with responses_client.responses.create(model=MODEL, input=MESSAGES, stream=True) as s:
        got = [e.model_dump() for e in s]
    with responses_direct.responses.create(model=MODEL, input=MESSAGES, stream=True) as s:
        want = [e.model_dump() for e in s]
    types = [e["type"] for e in got]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "".join(e["delta"] for e in got if e["type"] == "response.output_text.delta") == EXPECTED_TEXT
    assert [e["sequence_number"] for e in got] == list(range(len(got)))
    assert got[-1]["response"]["usage"]["output_tokens"] == TOKENS
    assert got == want


def test_message_stream_bytes_and_usage(tollgate, fake_ollama, tls):
    # The event stream reaches the client as Ollama wrote it; its usage (message_delta) is what Tollgate counts.
    body = {"model": MODEL, "max_tokens": 100, "messages": MESSAGES, "stream": True}
    with httpx2.Client(verify=tls.context(), timeout=30) as h:
        got = h.post(f"{tollgate.url}/v1/messages", json=body, headers={"x-api-key": f"{USER}:{PASSWORD}"}).content
    with httpx2.Client(timeout=30) as h:
        want = h.post(f"{fake_ollama.url}/v1/messages", json=body).content
    assert got == want
    assert b'"type":"message_delta"' in got and f'"output_tokens":{TOKENS}'.encode() in got
