"""API keys (`tollgate keys create|list|revoke`) through real TLS with the real clients: ollama-python with
OLLAMA_API_KEY (0.6.x sends it as `Authorization: Bearer <key>`), openai and anthropic with `api_key=<key>`. Each
gets 200 with a live key and 401 in its own API shape once the key is revoked (the server's key watcher sees the
revocation without a reload). A second server with `password-logins = nowhere` refuses user:password and still
takes keys."""

import os
import shutil
import subprocess
from pathlib import Path

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest

from conftest import MODEL, PASSWORD, TOKENS, USER, Proc, Server, start_tollgate, wait_for_port, wait_until

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]
EXPECTED_TEXT = "".join(f"tok{i} " for i in range(TOKENS))


def new_key_env(users_file: Path, d: Path) -> dict:
    """A users file of its own (a copy) and a state directory beside it in `d`, for the `keys` command and one
    server (one running tollgate serve per state directory)."""
    users = d / "users.htpasswd"
    shutil.copy(users_file, users)
    return {"users": users, "state": d / "state"}


@pytest.fixture(scope="module")
def key_env(binaries, users_file, tmp_path_factory):
    """The key environment `keyed` serves."""
    return new_key_env(users_file, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def keys_only_env(binaries, users_file, tmp_path_factory):
    """The key environment `keys_only` serves (`keyed` holds key_env's state directory meanwhile)."""
    return new_key_env(users_file, tmp_path_factory.mktemp("keys-only"))


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
def keys_only(binaries, tls, keys_only_env, fake_ollama, log_dir):
    server = start_tollgate(binaries, tls, keys_only_env["users"], fake_ollama, log_dir, "tollgate-keys-only", "--rate",
                            "0", "--state-dir", str(keys_only_env["state"]), "--password-logins", "nowhere")
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


def test_password_logins_nowhere_refuses_passwords_and_takes_keys(binaries, keys_only, tls, keys_only_env,
                                                                   monkeypatch):
    key = create_key(binaries, keys_only_env)
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


# ---------------------------------------------------------------------------------------------------------------
# The attack review's findings, each asserting the safe behaviour.

OTHER = "llama3:8b"


def test_a_key_limited_to_models_cannot_manage_models_or_name_others(binaries, tls, users_file, fake_ollama, log_dir,
                                                                     tmp_path):
    """A key with --models keeps none of its (admin) user's model management: admin and blob routes are refused in
    the caller's shape, /v1/models/{model} names only the key's models, and the status page is refused."""
    key_env = new_key_env(users_file, tmp_path)
    key = create_key(binaries, key_env, "--name", "chat-ui", "--models", MODEL)
    server = start_tollgate(binaries, tls, key_env["users"], fake_ollama, log_dir, "tollgate-keys-admin", "--rate", "0",
                            "--state-dir", str(key_env["state"]), "--admin", USER)
    try:
        with httpx.Client(base_url=server.url, verify=tls.context(), timeout=30,
                          headers={"authorization": f"Bearer {key}"}) as c:
            assert wait_until(lambda: c.get("/api/tags").status_code == 200)
            for method, path, body in (("DELETE", "/api/delete", {"model": OTHER}),
                                       ("POST", "/api/pull", {"model": OTHER, "stream": False}),
                                       ("POST", "/api/copy", {"source": OTHER, "destination": MODEL}),
                                       ("POST", "/api/create", {"model": MODEL, "from": OTHER, "stream": False}),
                                       ("POST", "/api/blobs/sha256:" + "0" * 64, None)):
                r = c.request(method, path, json=body)
                assert r.status_code == 403 and "limited to" in r.json()["error"], (path, r.status_code, r.text)
            r = c.get(f"/v1/models/{OTHER}")
            assert r.status_code == 403 and "error" in r.json(), r.text  # OpenAI's shape
            assert c.get(f"/v1/models/{MODEL}").status_code != 403
            # The status page shows every user's spending: not to a key limited to some models, admin's or not.
            r = c.get("/status")
            assert r.status_code == 403 and "limited to some models" in r.json()["error"], (r.status_code, r.text)
        # The same admin with her password still manages models and reads the status page.
        with httpx.Client(base_url=server.url, verify=tls.context(), timeout=30, auth=(USER, PASSWORD)) as c:
            assert c.post("/api/pull", json={"model": OTHER, "stream": False}).status_code != 403
            r = c.get("/status")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (r.status_code, r.text)
    finally:
        server.proc.stop()


def test_the_throttle_does_not_tell_which_key_ids_exist(binaries, tls, users_file, fake_ollama, log_dir, tmp_path):
    """A throttled (prefix, user) answers a wrong secret for one of the user's key ids as for an unknown id: a key's
    failures count under the user it claims, else under tg_<id>, never under the id's owner."""
    key_env = new_key_env(users_file, tmp_path)
    key = create_key(binaries, key_env, "--name", "oracle-target")
    server = start_tollgate(binaries, tls, key_env["users"], fake_ollama, log_dir, "tollgate-keys-oracle", "--rate", "0",
                            "--state-dir", str(key_env["state"]))
    try:
        junk = "a" * 32
        with httpx.Client(base_url=server.url, verify=tls.context(), timeout=30) as c:
            assert wait_until(lambda: c.get("/api/tags", headers={"authorization": f"Bearer {key}"}).status_code == 200)
            for _ in range(10):
                c.get("/api/tags", auth=(USER, "wrong password"))
            assert c.get("/api/tags", auth=(USER, "wrong password")).status_code == 429
            known = c.get("/api/tags", headers={"authorization": f"Bearer tg_{key_id(key)}_{junk}"}).status_code
            unknown = c.get("/api/tags", headers={"authorization": f"Bearer tg_{'b' * 12}_{junk}"}).status_code
        assert known == unknown == 401, (known, unknown)
    finally:
        server.proc.stop()


def test_users_remove_revokes_the_users_keys_and_add_warns(binaries, tls, key_env, users_file, fake_ollama, log_dir,
                                                          tmp_path):
    users = tmp_path / "users.htpasswd"
    shutil.copy(users_file, users)
    env = {"users": users, "state": tmp_path / "state"}
    old_key = create_key(binaries, env, "--name", "old-alice-laptop")
    tg = str(binaries["tollgate"])
    # keys list says when a key's user is gone (before users remove revokes it, e.g. after a hand edit).
    lines = users.read_text().splitlines()
    users.write_text("\n".join(l for l in lines if not l.startswith(f"{USER}:")) + "\n")
    listing = keys_cmd(binaries, env, "list").stdout
    assert "user removed" in listing, listing
    users.write_text("\n".join(lines) + "\n")
    # users add of a name with unrevoked keys warns.
    r = subprocess.run([tg, "users", "add", "carol", "--file", str(users), "--password-stdin", "--cost", "4"],
                       input="carol's own password\n", capture_output=True, text=True)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    server = start_tollgate(binaries, tls, users, fake_ollama, log_dir, "tollgate-keys-reuse", "--rate", "0",
                            "--state-dir", str(env["state"]))
    try:
        with httpx.Client(base_url=server.url, verify=tls.context(), timeout=30) as c:
            st = lambda: c.get("/api/tags", headers={"authorization": f"Bearer {old_key}"}).status_code
            assert wait_until(lambda: st() == 200)
            r = subprocess.run([tg, "users", "remove", USER, "--file", str(users)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            assert f"revoked 1 API key(s) of {USER}" in r.stdout, r.stdout
            assert wait_until(lambda: st() == 401)
            assert "revoked" in keys_cmd(binaries, env, "list").stdout
            r = subprocess.run([tg, "users", "add", USER, "--file", str(users), "--password-stdin", "--cost", "4"],
                               input="a new person's password\n", capture_output=True, text=True)
            assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
            assert wait_until(lambda: c.get("/api/tags", auth=(USER, "a new person's password")).status_code == 200)
            assert st() == 401, "the removed user's key logs in as the new user of that name"
            # A key created for the new user, then a hand edit that removes and re-adds the name: add warns.
            create_key(binaries, env, "--name", "new-alice")
            text = users.read_text()
            users.write_text("\n".join(l for l in text.splitlines() if not l.startswith(f"{USER}:")) + "\n")
            r = subprocess.run([tg, "users", "add", USER, "--file", str(users), "--password-stdin", "--cost", "4"],
                               input="yet another password\n", capture_output=True, text=True)
            assert r.returncode == 0 and "1 API key(s) not revoked" in r.stderr, r.stderr
    finally:
        server.proc.stop()


def test_expires_refuses_a_date_that_does_not_exist_and_list_escapes_names(binaries, key_env):
    r = keys_cmd(binaries, key_env, "create", USER, "--expires", "2099-02-31", check=False)
    assert r.returncode != 0 and "not a valid date" in r.stderr, r.stderr
    assert keys_cmd(binaries, key_env, "create", USER, "--expires", "2096-02-29").returncode == 0  # a leap day
    create_key(binaries, key_env, "--name", "evil\x1b]0;owned\x07\x1b[2J")
    listing = keys_cmd(binaries, key_env, "list").stdout
    assert "\x1b" not in listing and "\x07" not in listing, repr(listing)
    assert "evil\\u{1b}]0;owned\\u{7}" in listing, listing


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@needs_redis
def test_a_fleet_revocation_survives_a_restart_without_redis(binaries, tls, users_file, fake_ollama, log_dir,
                                                            tmp_path):
    """The watcher writes the revocations it reads from Redis into its own database: a server restarted while
    Redis is down (or emptied) still refuses the key."""
    from conftest import Proc
    users = tmp_path / "users.htpasswd"
    shutil.copy(users_file, users)
    state_a, state_b = tmp_path / "a", tmp_path / "b"
    port = _free_port()
    redis_url = f"redis://127.0.0.1:{port}"
    redis = Proc("redis-keys-fleet", ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                 log_dir).start(r"Ready to accept connections")

    def keys(state, *args):
        return subprocess.run([str(binaries["tollgate"]), "keys", *args, "--users", str(users), "--state-dir",
                               str(state), "--redis", redis_url], capture_output=True, text=True, timeout=60)

    key = keys(state_a, "create", USER, "--name", "fleet").stdout.strip()
    assert key.startswith("tg_")
    shutil.copytree(state_a, state_b)  # the fleet's second server runs on a copy of the database

    def serve(state, name):
        return start_tollgate(binaries, tls, users, fake_ollama, log_dir, name, "--rate", "0", "--state-dir",
                              str(state), "--redis", redis_url, "--metrics-listen", "127.0.0.1:0")

    def status(server):
        with httpx.Client(base_url=server.url, verify=tls.context(), timeout=30) as c:
            return c.get("/api/tags", headers={"authorization": f"Bearer {key}"}).status_code

    b = serve(state_b, "tollgate-keys-fleet-b")
    try:
        assert wait_until(lambda: status(b) == 200)
        r = keys(state_a, "revoke", key_id(key))
        assert r.returncode == 0 and "published the revocation" in r.stdout, r.stdout + r.stderr
        assert wait_until(lambda: status(b) == 401)
        assert wait_until(lambda: "revoked" in keys_cmd(binaries, {"users": users, "state": state_b}, "list").stdout)
        redis.stop()
        b.proc.stop()
        b = serve(state_b, "tollgate-keys-fleet-b2")
        assert status(b) == 401, "B accepts a key revoked fleet-wide"
    finally:
        b.proc.stop()
        redis.stop()


@needs_redis
def test_the_fleet_throttle_lets_a_key_verified_from_that_prefix_through(binaries, tls, users_file, fake_ollama,
                                                                       log_dir, tmp_path):
    """As locally, a key verified from a prefix passes that prefix's throttle with redis: a neighbour guessing the
    user's password does not lock the user's keys out fleet-wide."""
    from conftest import Proc
    users = tmp_path / "users.htpasswd"
    shutil.copy(users_file, users)
    state = tmp_path / "state"
    port = _free_port()
    redis = Proc("redis-keys-throttle", ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                 log_dir).start(r"Ready to accept connections")
    key = create_key(binaries, {"users": users, "state": state})
    try:
        server = start_tollgate(binaries, tls, users, fake_ollama, log_dir, "tollgate-keys-throttle-fleet", "--rate",
                                "0", "--state-dir", str(state), "--metrics-listen", "127.0.0.1:0", "--redis",
                                f"redis://127.0.0.1:{port}")
        try:
            with httpx.Client(base_url=server.url, verify=tls.context(), timeout=30) as c:
                assert wait_until(lambda: c.get("/api/tags", headers={"authorization": f"Bearer {key}"}).status_code == 200)
                for _ in range(10):
                    c.get("/api/tags", auth=(USER, "guess"))
                assert c.get("/api/tags", auth=(USER, "guess")).status_code == 429
            # A new connection: on the old one the login is remembered and no throttle is asked at all.
            with httpx.Client(base_url=server.url, verify=tls.context(), timeout=30) as fresh:
                assert fresh.get("/api/tags", headers={"authorization": f"Bearer {key}"}).status_code == 200
        finally:
            server.proc.stop()
    finally:
        redis.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sudo tollgate keys create)")
def test_keys_create_as_root_gives_a_new_state_directory_to_the_users_files_owner(binaries, users_file, tmp_path):
    """Run by root before the server ever ran, `keys create` creates the state directory (0700) and the database:
    both go to the users file's owner (the account the server runs as), or the server could not open them."""
    d = tmp_path / "deploy"
    d.mkdir()
    users = d / "users.htpasswd"
    shutil.copy(users_file, users)
    os.chown(users, 65534, 65534)
    env = {"users": users, "state": d / "state"}
    create_key(binaries, env)
    for path in (d / "state", d / "state" / "tollgate.db"):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (65534, 65534), (path, st.st_uid)
    assert os.stat(d / "state").st_mode & 0o777 == 0o700


def test_a_key_limited_to_models_lists_only_those(binaries, tls, users_file, log_dir, tmp_path, monkeypatch):
    """Model lists show a key only the models it may name: ollama-python's list() and the OpenAI SDK's
    models.list() see the key's model, its user with her password sees every local one, and the cloud model
    (cloud-models off) to neither."""
    cloud = "gpt-oss:120b-cloud"
    fake = Proc("fake-ollama-models", [str(binaries["fake-ollama"]), "--listen", "127.0.0.1:0", "--model", MODEL,
                                       "--model", OTHER, "--model", cloud], log_dir)
    fake.start(r"fake-ollama listening on http://([0-9.]+):(\d+)")
    upstream = Server(fake, fake.match.group(1), int(fake.match.group(2)), "http")
    wait_for_port(upstream.host, upstream.port)
    key_env = new_key_env(users_file, tmp_path)
    key = create_key(binaries, key_env, "--name", "chat-ui", "--models", f"{MODEL},{cloud}")
    server = start_tollgate(binaries, tls, key_env["users"], upstream, log_dir, "tollgate-key-lists", "--rate", "0",
                            "--state-dir", str(key_env["state"]))
    try:
        o = ollama_client(server, tls, key, monkeypatch)
        assert wait_until(lambda: _works(lambda: o.list()))
        assert [m.model for m in o.list().models] == [MODEL]
        o.close()
        with openai_client(server, tls, key) as c:
            assert [m.id for m in c.models.list()] == [MODEL]
        with httpx.Client(base_url=server.url, verify=tls.context(), timeout=30, auth=(USER, PASSWORD)) as h:
            r = h.get("/api/tags")
            assert r.status_code == 200, r.text
            assert [m["name"] for m in r.json()["models"]] == [MODEL, OTHER]
            assert r.headers["content-length"] == str(len(r.content))
    finally:
        server.proc.stop()
        fake.stop()
