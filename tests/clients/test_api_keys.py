"""API keys (`tollgate keys create|list|revoke`) through real TLS with the real clients: ollama-python with
OLLAMA_API_KEY (0.6.x sends it as `Authorization: Bearer <key>`), openai and anthropic with `api_key=<key>`. Each
gets 200 with a live key and 401 in its own API shape once the key is revoked (the server's key watcher sees the
revocation without a reload). A second server with `password-logins = nowhere` refuses user:password and still
takes keys."""

import shutil
import subprocess

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest

from conftest import MODEL, PASSWORD, TOKENS, USER, start_tollgate, wait_until

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]
EXPECTED_TEXT = "".join(f"tok{i} " for i in range(TOKENS))


@pytest.fixture(scope="module")
def key_env(binaries, users_file, tmp_path_factory):
    """A users file of its own (a copy) and a state directory beside it, for the `keys` command and the server."""
    d = tmp_path_factory.mktemp("keys")
    users = d / "users.htpasswd"
    shutil.copy(users_file, users)
    return {"users": users, "state": d / "state"}


def keys_cmd(binaries, env, *args, check=True):
    r = subprocess.run(
        [str(binaries["tollgate"]), "keys", *args, "--users", str(env["users"]), "--state-dir", str(env["state"])],
        capture_output=True, text=True, timeout=60,
    )
    if check:
        assert r.returncode == 0, f"tollgate keys {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def create_key(binaries, env, *args) -> str:
    r = keys_cmd(binaries, env, "create", USER, *args)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tg_"), r.stdout
    return lines[0]


def key_id(key: str) -> str:
    return key.split("_")[1]


@pytest.fixture(scope="module")
def keyed(binaries, tls, key_env, fake_ollama, log_dir):
    # The database exists before the server starts (the first key creates it), as after `keys create` in deploy/.
    create_key(binaries, key_env, "--name", "warm-up")
    server = start_tollgate(binaries, tls, key_env["users"], fake_ollama, log_dir, "tollgate-keys", "--rate", "0",
                            "--state-dir", str(key_env["state"]))
    yield server
    server.proc.stop()


@pytest.fixture(scope="module")
def keys_only(binaries, tls, key_env, fake_ollama, log_dir):
    server = start_tollgate(binaries, tls, key_env["users"], fake_ollama, log_dir, "tollgate-keys-only", "--rate", "0",
                            "--state-dir", str(key_env["state"]), "--password-logins", "nowhere")
    yield server
    server.proc.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


def ollama_client(server, tls, key, monkeypatch) -> ollama.Client:
    monkeypatch.setenv("OLLAMA_API_KEY", key)
    return ollama.Client(host=server.url, verify=tls.context(), timeout=30)


def openai_client(server, tls, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key,
                         http_client=httpx2.Client(verify=tls.context(), timeout=30), max_retries=0)


def anthropic_client(server, tls, key) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=key,
                               http_client=httpx2.Client(verify=tls.context(), timeout=30), max_retries=0)


def test_create_prints_the_key_once_and_list_never_shows_it(binaries, key_env):
    key = create_key(binaries, key_env, "--name", "laptop", "--expires", "90d", "--models", f"{MODEL},other")
    listed = keys_cmd(binaries, key_env, "list").stdout
    assert key_id(key) in listed and "laptop" in listed and "active" in listed and "TOKENS" in listed
    secret = key.split("_")[2]
    assert secret not in listed and key not in listed
    assert keys_cmd(binaries, key_env, "list", USER).stdout == listed
    assert "no keys for nobody" in keys_cmd(binaries, key_env, "list", "nobody").stdout


def test_create_refuses_unknown_users_and_past_expiry(binaries, key_env):
    r = keys_cmd(binaries, key_env, "create", "nobody", check=False)
    assert r.returncode != 0 and '"nobody" is not a user' in r.stderr and "tg_" not in r.stdout
    r = keys_cmd(binaries, key_env, "create", USER, "--expires", "2001-01-01", check=False)
    assert r.returncode != 0 and "in the past" in r.stderr and "tg_" not in r.stdout


def test_every_client_works_with_a_key_and_gets_401_once_it_is_revoked(binaries, keyed, tls, key_env, monkeypatch):
    key = create_key(binaries, key_env, "--name", "clients")
    o = ollama_client(keyed, tls, key, monkeypatch)
    assert o._client.headers["authorization"] == f"Bearer {key}"
    oa = openai_client(keyed, tls, key)
    an = anthropic_client(keyed, tls, key)
    # The server's watcher picks the new key up within a poll.
    assert wait_until(lambda: _works(lambda: o.list()))
    got = o.generate(model=MODEL, prompt="Why is the sky blue?")
    assert got.done and got.response == EXPECTED_TEXT
    chat = oa.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert chat.choices[0].message.content == EXPECTED_TEXT
    msg = an.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert "".join(b.text for b in msg.content if b.type == "text") == EXPECTED_TEXT

    r = keys_cmd(binaries, key_env, "revoke", key_id(key))
    assert f"revoked key {key_id(key)}" in r.stdout
    assert "revoked" in keys_cmd(binaries, key_env, "list").stdout

    assert wait_until(lambda: not _works(lambda: o.list()))
    with pytest.raises(ollama.ResponseError) as e:
        o.list()
    assert e.value.status_code == 401 and "revoked" in e.value.error
    with pytest.raises(openai.AuthenticationError) as e:
        oa.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert e.value.status_code == 401 and "revoked" in e.value.body["message"], e.value.body
    with pytest.raises(anthropic.AuthenticationError) as e:
        an.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert e.value.status_code == 401 and e.value.body["error"]["type"] == "authentication_error", e.value.body
    o.close()
    oa.close()
    an.close()


def test_a_wrong_secret_is_401_and_the_key_models_narrow(binaries, keyed, tls, key_env):
    key = create_key(binaries, key_env, "--models", "llama3:8b")
    wrong = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    with openai_client(keyed, tls, wrong) as c:
        with pytest.raises(openai.AuthenticationError):
            c.models.list()
    with openai_client(keyed, tls, key) as c:
        assert wait_until(lambda: _works(lambda: c.models.list()))
        with pytest.raises(openai.PermissionDeniedError) as e:
            c.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert "not allowed for this API key" in e.value.body["message"], e.value.body


def test_basic_with_the_key_as_password(binaries, keyed, tls, key_env):
    key = create_key(binaries, key_env)
    with httpx.Client(verify=tls.context(), timeout=30) as h:
        assert wait_until(lambda: h.get(f"{keyed.url}/api/tags", auth=(USER, key)).status_code == 200)
        assert h.get(f"{keyed.url}/api/tags", auth=("", key)).status_code == 200
        # Another user's name with this key is refused: the log never shows a name the key does not belong to.
        assert h.get(f"{keyed.url}/api/tags", auth=("mallory", key)).status_code == 401


def test_password_logins_nowhere_refuses_passwords_and_takes_keys(binaries, keys_only, tls, key_env, monkeypatch):
    key = create_key(binaries, key_env)
    with httpx.Client(verify=tls.context(), timeout=30) as h:
        r = h.get(f"{keys_only.url}/api/tags", auth=(USER, PASSWORD))
        assert r.status_code == 401 and "API keys only" in r.json()["error"]
        r = h.get(f"{keys_only.url}/api/tags", headers={"Authorization": f"Bearer {USER}:{PASSWORD}"})
        assert r.status_code == 401
    with openai_client(keys_only, tls, f"{USER}:{PASSWORD}") as c:
        with pytest.raises(openai.AuthenticationError):
            c.models.list()
    o = ollama_client(keys_only, tls, key, monkeypatch)
    assert wait_until(lambda: _works(lambda: o.list()))
    assert [m.model for m in o.list().models] == [MODEL]
    o.close()


def _works(call) -> bool:
    try:
        call()
        return True
    except (ollama.ResponseError, openai.APIStatusError, anthropic.APIStatusError):
        return False
