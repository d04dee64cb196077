"""Automatic HTTPS through the real binary, as the README shows it: `tollgate serve --acme-domain NAME` against
Debian's Pebble (the ACME test server) on loopback, its fake DNS answering 127.0.0.1 for every name. Tollgate starts
on a self-signed certificate for the name and says so, answers TLS-ALPN-01 on its own TLS listener, stores the issued
chain privately in state-dir/acme and swaps it in; a client then verifies it against Pebble's root with the name
checked. A restart serves the stored certificate (and says when it will be renewed), `check-config` tells where the
certificate comes from, and an unreachable CA leaves the served certificate in place and is logged with a retry.
Skipped, saying why, without pebble (.ci/run installs it)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORD, USER, Proc, _openssl, wait_for_port, wait_until

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"
NAME = "a.tollgate.test"

pytestmark = pytest.mark.skipif(not (os.access(PEBBLE, os.X_OK) and os.access(CHALLTESTSRV, os.X_OK)),
                                reason="pebble is not installed (apt-get install pebble)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pebble:
    """Pebble and its fake DNS, validating TLS-ALPN-01 at `tls_port`; its own HTTPS signed by a CA of the test's."""

    def __init__(self, directory: Path, tls_port: int):
        self.dir = directory
        self.acme_port, self.management_port, dns_port = free_port(), free_port(), free_port()
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                 "-subj", "/CN=pebble test CA", "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=directory)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                 "-keyout", "server-key.pem", "-out", "server.csr", cwd=directory)
        (directory / "san.cnf").write_text("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-days", "2", "-extfile", "san.cnf", "-out", "server.pem", cwd=directory)
        (directory / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.acme_port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(directory / "server.pem"), "privateKey": str(directory / "server-key.pem"),
            "httpPort": free_port(), "tlsPort": tls_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}))
        self.dns = Proc("pebble-challtestsrv", [CHALLTESTSRV, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                                                "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
                                                "-tlsalpn01", "", "-management", f"127.0.0.1:{free_port()}"],
                        directory).start(r"Starting management server")
        # Pebble's validation authority without its random sleeps, validating for real, no reused authorizations.
        self.pebble = Proc("pebble", ["env", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=0",
                                      "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0", PEBBLE,
                                      "-config", str(directory / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
                           directory).start(r"Starting Pebble ACME server")
        wait_for_port("127.0.0.1", self.acme_port)
        wait_for_port("127.0.0.1", self.management_port)

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    def issuing_root(self) -> Path:
        """The root that signs what Pebble issues (from its management interface), as a file."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        with socket.create_connection(("127.0.0.1", self.management_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET /roots/0 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        pem = data[data.index(b"-----BEGIN"):]
        path = self.dir / "issuing-root.pem"
        path.write_bytes(pem)
        return path

    def stop(self) -> None:
        self.pebble.stop()
        self.dns.stop()


def serve(binaries, users_file, fake_ollama, workdir: Path, name: str, tls_port: int, ca: str,
          ca_root: Path | None) -> Proc:
    argv = [str(binaries["tollgate"]), "serve", "--listen", f"127.0.0.1:{tls_port}",
            "--upstream", f"http://{fake_ollama.host}:{fake_ollama.port}", "--users", str(users_file),
            "--state-dir", str(workdir / "state"), "--metrics-listen", "off", "--log", "none",
            "--acme-domain", NAME, "--acme-email", "ops@tollgate.test", "--acme-ca", ca]
    if ca_root:
        argv += ["--acme-ca-root", str(ca_root)]
    proc = Proc(name, argv, workdir).start(r"serving https://127\.0\.0\.1:(\d+)")
    wait_for_port("127.0.0.1", tls_port)
    return proc


def served(port: int, root: Path | None) -> tuple[str, int]:
    """The served leaf's SHA-256 and the status of GET /api/tags through it; verified against `root` with the name
    checked, or not verified at all when `root` is None."""
    if root:
        ctx = ssl.create_default_context(cafile=str(root))
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=NAME) as s:
            leaf = s.getpeercert(binary_form=True)
            auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            s.sendall(f"GET /api/tags HTTP/1.1\r\nHost: {NAME}\r\nAuthorization: Basic {auth}\r\n"
                      "Connection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    return hashlib.sha256(leaf).hexdigest(), int(data.split(b" ", 2)[1])


def test_serve_gets_its_certificate_keeps_it_across_a_restart_and_check_config_says_so(
        binaries, users_file, fake_ollama, tmp_path):
    tls_port = free_port()
    pebble = Pebble(tmp_path, tls_port)
    tg = None
    try:
        tg = serve(binaries, users_file, fake_ollama, tmp_path, "tollgate-acme", tls_port, pebble.directory_url,
                   pebble.ca)
        assert f"acme: serving a self-signed certificate for {NAME}" in tg.stderr_path.read_text(), tg.logs()
        assert wait_until(lambda: "acme: installed the certificate" in tg.stderr_path.read_text(), timeout=60), \
            tg.logs() + pebble.pebble.logs()
        root = pebble.issuing_root()
        fingerprint, status = served(tls_port, root)
        assert status == 200
        acme = tmp_path / "state" / "acme"
        assert stat.S_IMODE(acme.stat().st_mode) == 0o700
        for f in ("chain.pem", "key.pem", "account-key.pem"):
            assert stat.S_IMODE((acme / f).stat().st_mode) == 0o600, f
        assert tg.stop() == 0, tg.logs()

        # check-config: where the certificate comes from and when it expires.
        check = subprocess.run([str(binaries["tollgate"]), "check-config", "--listen", f"127.0.0.1:{tls_port}",
                                "--users", str(users_file), "--state-dir", str(tmp_path / "state"),
                                "--acme-domain", NAME, "--acme-ca", pebble.directory_url],
                               capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"acme: certificate for {NAME} from {pebble.directory_url}, stored in {acme}: expires in" \
            in check.stdout + check.stderr, check.stdout + check.stderr

        # A restart serves the stored certificate at once, and plans its renewal instead of ordering.
        tg = serve(binaries, users_file, fake_ollama, tmp_path, "tollgate-acme-restart", tls_port,
                   pebble.directory_url, pebble.ca)
        log = tg.stderr_path.read_text()
        assert f"acme: serving the certificate {acme / 'chain.pem'} for {NAME}, expires in" in log, tg.logs()
        assert "renewed in" in log and "self-signed" not in log, tg.logs()
        assert served(tls_port, root) == (fingerprint, 200)
    finally:
        if tg:
            tg.stop()
        pebble.stop()


def test_an_unreachable_ca_keeps_the_served_certificate_and_is_retried(binaries, users_file, fake_ollama, tmp_path):
    tls_port = free_port()
    tg = serve(binaries, users_file, fake_ollama, tmp_path, "tollgate-acme-noca", tls_port,
               f"https://127.0.0.1:{free_port()}/dir", None)
    try:
        assert wait_until(lambda: "acme: next attempt in" in tg.stderr_path.read_text()), tg.logs()
        log = tg.stderr_path.read_text()
        assert f"acme: obtaining a certificate for {NAME}" in log and "failed: cannot reach the CA" in log, tg.logs()
        # The self-signed certificate for the name is still served, and requests go through.
        self_signed = (tmp_path / "state" / "acme" / "self-signed.pem").read_text()
        der = ssl.PEM_cert_to_DER_cert(self_signed)
        assert served(tls_port, None) == (hashlib.sha256(der).hexdigest(), 200)
    finally:
        tg.stop()
