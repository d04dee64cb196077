"""README's quick start, as written: `tollgate serve` with no certificate configured makes the development pair in
`certs/` under its working directory, and `SSL_CERT_FILE=certs/dev-cert.pem` is all the official ollama and openai
Python clients need to trust it (both read the variable through httpx / httpx2), with hostname checking on."""

from __future__ import annotations

import httpx
import ollama
import openai
import pytest

from conftest import MODEL, PASSWORD, USER, Proc, wait_for_port


@pytest.fixture(scope="module")
def dev_tollgate(binaries, users_file, fake_ollama, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quickstart")
    proc = Proc(
        "tollgate-dev-cert",
        [
            str(binaries["tollgate"]), "serve",
            "--listen", "127.0.0.1:0",
            "--upstream", f"http://{fake_ollama.host}:{fake_ollama.port}",
            "--users", str(users_file),
            "--state-dir", str(workdir / "state"),
            "--log", "none",
            "--metrics-listen", "off",
        ],
        workdir,
    ).start(r"serving https://([0-9.]+):(\d+)")
    port = int(proc.match.group(2))
    wait_for_port("127.0.0.1", port)
    yield workdir, port
    proc.stop()


def test_serve_writes_the_certificate_the_readme_names(dev_tollgate):
    workdir, _ = dev_tollgate
    assert (workdir / "certs" / "dev-cert.pem").is_file()
    assert (workdir / "certs" / "dev-key.pem").is_file()


def test_ollama_python_trusts_it_through_ssl_cert_file(dev_tollgate, monkeypatch):
    workdir, port = dev_tollgate
    monkeypatch.setenv("SSL_CERT_FILE", str(workdir / "certs" / "dev-cert.pem"))
    client = ollama.Client(host=f"https://localhost:{port}", auth=httpx.BasicAuth(USER, PASSWORD))
    names = [m.model for m in client.list().models]
    assert MODEL in names


def test_openai_trusts_it_through_ssl_cert_file(dev_tollgate, monkeypatch):
    workdir, port = dev_tollgate
    monkeypatch.setenv("SSL_CERT_FILE", str(workdir / "certs" / "dev-cert.pem"))
    client = openai.OpenAI(base_url=f"https://localhost:{port}/v1", api_key=f"{USER}:{PASSWORD}")
    assert MODEL in [m.id for m in client.models.list()]


def test_without_it_the_clients_refuse_the_certificate(dev_tollgate, monkeypatch):
    _, port = dev_tollgate
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    client = ollama.Client(host=f"https://localhost:{port}", auth=httpx.BasicAuth(USER, PASSWORD))
    with pytest.raises(Exception) as raised:
        client.list()
    # ollama wraps httpx's error in its own ConnectionError; the certificate failure is further down the chain.
    chain, e = [], raised.value
    while e is not None and len(chain) < 10:
        chain.append(repr(e))
        e = e.__cause__ or e.__context__
    assert any("CERTIFICATE_VERIFY_FAILED" in r for r in chain), chain
