"""TLS audit of Tollgate with the test CA and leaf: sslyze's Mozilla "intermediate" check, protocol versions below
TLS 1.2 refused (with a control server proving the client here can still speak them), compression and client
renegotiation off, ALPN, session resumption, and the HSTS header Mozilla's configuration asks for. The development
certificate `serve` creates when no cert and key are configured passes the same sslyze check."""

import json
import socket
import ssl
import subprocess
import sys
import threading
import warnings

import httpx
import pytest

from conftest import PASSWORD, USER, Proc, wait_for_port

MOZILLA_INTERMEDIATE_TLS12 = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    # Mozilla's intermediate list also has finite-field DHE-RSA suites; with an ECDSA certificate they cannot occur.
}
MOZILLA_INTERMEDIATE_TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
MOZILLA_INTERMEDIATE_GROUPS = {"X25519", "secp256r1", "secp384r1"}
HSTS_MAX_AGE = 63072000  # two years, Mozilla "intermediate"


@pytest.fixture(scope="module")
def sslyze_run(tollgate, tls, tmp_path_factory):
    """One sslyze scan for the module: (exit code, console output, parsed JSON scan result)."""
    return run_sslyze(tollgate.host, tollgate.port, tls.ca, tmp_path_factory.mktemp("sslyze") / "scan.json")


def run_sslyze(host: str, port: int, ca_file, out) -> tuple[int, str, dict | None]:
    """sslyze's Mozilla "intermediate" check of HOST:PORT trusting `ca_file`: (exit code, console output, parsed
    JSON scan result)."""
    # HOST:PORT{IP}: the name for SNI and certificate checks, the address to connect to.
    target = f"localhost:{port}{{{host}}}"
    r = subprocess.run(
        [sys.executable, "-m", "sslyze", "--mozilla_config=intermediate", f"--certinfo_ca_file={ca_file}",
         f"--json_out={out}", target],
        capture_output=True, text=True, timeout=180,
    )
    scan = None
    if out.exists():
        results = json.loads(out.read_text())["server_scan_results"]
        if results and results[0].get("scan_result"):
            scan = results[0]["scan_result"]
    return r.returncode, r.stdout + r.stderr, scan


def compliance_section(console: str) -> str:
    i = console.find("COMPLIANCE AGAINST")
    return console[i:] if i >= 0 else console[-3000:]


def accepted(scan, key: str) -> set[str]:
    return {s["cipher_suite"]["name"] for s in scan[key]["result"]["accepted_cipher_suites"]}


def test_sslyze_mozilla_intermediate_compliant(sslyze_run):
    code, console, _ = sslyze_run
    assert code == 0, f"sslyze exited {code}:\n{compliance_section(console)}"
    assert "OK - Compliant" in console, compliance_section(console)


def test_sslyze_protocols_and_suites(sslyze_run):
    _, console, scan = sslyze_run
    assert scan is not None, console[-3000:]
    for old in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"):
        assert scan[old]["status"] == "COMPLETED", scan[old]
        assert accepted(scan, old) == set(), old
    tls12, tls13 = accepted(scan, "tls_1_2_cipher_suites"), accepted(scan, "tls_1_3_cipher_suites")
    assert tls12 and tls12 <= MOZILLA_INTERMEDIATE_TLS12, tls12
    assert tls13 == MOZILLA_INTERMEDIATE_TLS13, tls13
    groups = {c["name"] for c in scan["elliptic_curves"]["result"]["supported_curves"]}
    assert groups == MOZILLA_INTERMEDIATE_GROUPS, groups


def test_sslyze_compression_and_renegotiation_off(sslyze_run):
    _, console, scan = sslyze_run
    assert scan is not None, console[-3000:]
    assert scan["tls_compression"]["result"]["supports_compression"] is False
    reneg = scan["session_renegotiation"]["result"]
    assert reneg["client_renegotiations_success_count"] == 0, reneg
    assert reneg["is_vulnerable_to_client_renegotiation_dos"] is False, reneg


def test_sslyze_certificate_chain_trusted_with_test_ca(sslyze_run):
    _, console, scan = sslyze_run
    assert scan is not None, console[-3000:]
    deployment = scan["certificate_info"]["result"]["certificate_deployments"][0]
    # The public trust stores sslyze ships reject the test CA, of course; the one given with --certinfo_ca_file
    # must accept the chain Tollgate sends.
    supplied = [v for v in deployment["path_validation_results"] if v["trust_store"]["name"] == "Supplied CA file"]
    assert len(supplied) == 1 and supplied[0]["was_validation_successful"], deployment["path_validation_results"]
    assert deployment["received_chain_has_valid_order"] is True


def _legacy_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("ALL:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.0/1.1 at the default security level
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def _handshake(ctx: ssl.SSLContext, host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version()


@pytest.fixture(scope="module")
def legacy_control_server(tls):
    """A Python TLS server that speaks only TLS 1.0 and 1.1, with the same leaf: proves that the client side of
    the refusal checks below can make such handshakes, so a refusal is Tollgate's and not this machine's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.load_cert_chain(tls.cert, tls.key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            conn.settimeout(10)
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield listener.getsockname()[1]
    stop.set()
    t.join(timeout=5)
    listener.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"])
def test_legacy_tls_versions_refused(version, tollgate, legacy_control_server):
    try:
        got = _handshake(_legacy_client(version), "127.0.0.1", legacy_control_server)
    except (ssl.SSLError, OSError) as e:
        pytest.skip(f"this machine's OpenSSL cannot make a {version.name} handshake at all ({e}); nothing to test")
    assert got in ("TLSv1", "TLSv1.1")

    with pytest.raises(ssl.SSLError):
        _handshake(_legacy_client(version), tollgate.host, tollgate.port)


@pytest.mark.parametrize("version,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls12_and_tls13_verified_with_alpn(version, name, tollgate, tls):
    ctx = tls.context()
    ctx.minimum_version = ctx.maximum_version = version
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((tollgate.host, tollgate.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == name
            assert s.selected_alpn_protocol() == "http/1.1"  # h2 is not offered back
            assert s.compression() is None


def test_untrusted_without_test_ca(tollgate):
    """The leaf is only trusted through the test CA: the checks above really verify the chain."""
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(ssl.create_default_context(), tollgate.host, tollgate.port)


def test_tls12_session_resumption(tollgate, tls):
    ctx = tls.context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((tollgate.host, tollgate.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            session = s.session
            assert not s.session_reused
    assert session is not None
    with socket.create_connection((tollgate.host, tollgate.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            assert s.session_reused


def test_hsts_header(tollgate, tls):
    """Mozilla's "intermediate" configuration includes `Strict-Transport-Security:
    max-age=63072000` on HTTPS responses; sslyze 6 leaves this check out of its compliance verdict."""
    with httpx.Client(verify=tls.context(), auth=httpx.BasicAuth(USER, PASSWORD), timeout=30) as c:
        r = c.get(f"{tollgate.url}/api/tags")
    assert r.status_code == 200
    hsts = r.headers.get("strict-transport-security")
    assert hsts is not None, f"no Strict-Transport-Security header; headers were {dict(r.headers)}"
    directives = {d.strip().split("=")[0].lower(): d.strip() for d in hsts.split(";")}
    assert "max-age" in directives, hsts
    assert int(directives["max-age"].split("=")[1].strip('"')) >= HSTS_MAX_AGE, hsts


@pytest.fixture(scope="module")
def tollgate_development_pair(binaries, users_file, fake_ollama, tmp_path_factory):
    """A Tollgate started as in the quick start, with no cert or key configured: it creates the development pair
    under certs/ in its working directory."""
    d = tmp_path_factory.mktemp("quickstart")
    proc = Proc(
        "tollgate-dev-cert",
        [
            str(binaries["tollgate"]), "serve", "--listen", "127.0.0.1:0",
            "--upstream", f"http://{fake_ollama.host}:{fake_ollama.port}",
            "--users", str(users_file), "--state-dir", str(d / "state"), "--log", "none", "--metrics-listen", "off",
        ],
        d,
    ).start(r"serving https://([0-9.]+):(\d+)")
    host, port = proc.match.group(1), int(proc.match.group(2))
    wait_for_port(host, port)
    yield host, port, d / "certs" / "dev-cert.pem"
    proc.stop()


def test_development_certificate_mozilla_intermediate_compliant(tollgate_development_pair, tmp_path):
    """The self-signed development certificate passes the Mozilla "intermediate" check when trusted (as a client
    does with SSL_CERT_FILE): 90 days, authority and subject key identifiers, the usual extensions."""
    host, port, cert = tollgate_development_pair
    assert cert.exists(), "serve did not create certs/dev-cert.pem"
    code, console, scan = run_sslyze(host, port, cert, tmp_path / "scan.json")
    assert code == 0, f"sslyze exited {code}:\n{compliance_section(console)}"
    assert "OK - Compliant" in console, compliance_section(console)
    deployment = scan["certificate_info"]["result"]["certificate_deployments"][0]
    supplied = [v for v in deployment["path_validation_results"] if v["trust_store"]["name"] == "Supplied CA file"]
    assert len(supplied) == 1 and supplied[0]["was_validation_successful"], deployment["path_validation_results"]
