"""What the deployment docs and deploy/install.sh promise, checked against the files themselves. The package itself
is tried end to end by deploy/test-package (run by .ci/run as root); these need neither root nor the binaries."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "deploy").glob("*.md")), REPO / "bench" / "README.md",
        REPO / "fuzz" / "README.md"]
SCRIPTS = [p for p in (REPO / "deploy").rglob("*") if p.is_file() and p.read_bytes().startswith(b"#!")]
SCRIPTS += [REPO / ".ci" / "run", *[p for p in (REPO / "bench").iterdir() if p.is_file() and p.read_bytes().startswith(b"#!")]]
INSTALL = REPO / "deploy" / "install.sh"


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_no_file_names_an_issue_or_a_file_outside_the_repository():
    # Every tracked text file: code, tests, docs, scripts and configuration speak of this repository only.
    outside = re.compile(r"\b(?:REFERENCE|STYLE)\.md\b|\bseed setup\b|\b[Ii]ssues? ?#?\d+|\.\./shared\b")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = [REPO / name for name in tracked.decode().split("\0") if name and name != "tests/clients/test_deploy.py"]
    found = []
    for p in files:
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        found += [f"{p.relative_to(REPO)}:{n}: {line.strip()}" for n, line in enumerate(lines, 1) if outside.search(line)]
    assert files, "git ls-files listed nothing"
    assert not found, "\n".join(found)


def test_no_doc_says_tollgate_users_rewrites_the_file_root_only():
    # UsersFileEditor keeps an existing file's owner, group and mode (README, "Users").
    found = [f"{p.relative_to(REPO)}:{n}" for p in DOCS + [INSTALL]
             for n, line in enumerate(text(p).splitlines(), 1) if "0600 root:root" in line]
    assert not found, found


def test_install_sh_creates_the_first_user_with_a_generated_password():
    calls = [line for line in text(INSTALL).splitlines() if re.search(r'"\$BIN" users add\b', line)]
    assert calls, "install.sh no longer runs users add"
    for line in calls:
        assert "--generate" in line, f"users add without --generate asks at a terminal: {line.strip()}"


def test_step_references_in_install_sh_name_steps_that_exist():
    refs = re.findall(r"\(deploy/([A-Z-]+\.md), step (\d+)\)", text(INSTALL))
    assert refs, "install.sh names no doc step (the test looks for '(deploy/FILE.md, step N)')"
    for doc, step in refs:
        assert re.search(rf"^{step}\. |^### {step}\. ", text(REPO / "deploy" / doc), re.M), \
            f"deploy/{doc} has no step {step}"


def test_the_example_config_leaves_port_80_to_certbot():
    conf = text(REPO / "deploy" / "tollgate.conf")
    assert not re.search(r"^\s*listen-redirect\s*=", conf, re.M), \
        "an active listen-redirect holds port 80, which certbot's standalone renewals (MIGRATION.md) need"
    assert "certbot certonly --standalone" in text(REPO / "deploy" / "MIGRATION.md")


def test_readme_says_how_to_trust_the_development_certificate_and_call_the_binary():
    readme = text(REPO / "README.md")
    assert "SSL_CERT_FILE=certs/dev-cert.pem" in readme
    assert ".build/release/tollgate" in readme
    assert "second terminal" in readme


def test_the_units_reload_reports_the_outcome_and_its_comment_says_what_sighup_reloads():
    unit = text(REPO / "deploy" / "tollgate.service")
    assert "as the server gains it" not in unit
    assert re.search(r"SIGHUP makes the server re-read the\s+(#\s+)?config, the certificate and the users file", unit)
    # `systemctl reload` fails when the server refuses the new configuration (a bare kill -HUP always succeeds).
    assert re.search(r"^ExecReload=/usr/local/bin/tollgate reload --config /etc/tollgate/tollgate.conf$", unit, re.M)


def run_install(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(INSTALL), "--dry-run", *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_install_sh_refuses_an_unreadable_import_file_before_changing_anything(tmp_path):
    r = run_install("--import-htpasswd", str(tmp_path / "missing.htpasswd"))
    assert r.returncode != 0
    assert "not a readable file" in r.stderr
    assert "==> 2" not in r.stdout, "install.sh went past its checks"


def test_install_sh_refuses_a_file_that_is_not_the_tollgate_package(tmp_path):
    fake = tmp_path / "tollgate_1.0_amd64.deb"
    fake.write_text("not a package\n")
    r = run_install("--package", str(fake))
    assert r.returncode != 0
    assert "is not a tollgate package" in r.stderr
    assert "==> 2" not in r.stdout
