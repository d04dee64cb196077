"""Stopping Tollgate as a service manager does (SIGTERM), which the fixtures here also rely on: it must take the
graceful path (README: "after SIGTERM/SIGINT: stop accepting, let in-flight streams finish ... then close")
rather than die from the signal's default action."""

import signal
import subprocess

from conftest import STOP_TIMEOUT, start_tollgate


def test_sigterm_drains_and_exits_cleanly(binaries, tls, users_file, fake_ollama, log_dir):
    server = start_tollgate(binaries, tls, users_file, fake_ollama, log_dir, "tollgate-sigterm", "--rate", "0")
    proc = server.proc.popen
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=STOP_TIMEOUT)
    finally:
        server.proc.stop()
    stderr = server.proc.stderr_path.read_text(errors="replace")
    assert code != -signal.SIGTERM, (
        "tollgate was killed by SIGTERM's default action instead of draining (threads started before "
        f"Signals.install have SIGTERM unblocked?)\n{stderr}"
    )
    assert "received SIGTERM" in stderr, stderr
    assert code == 0, stderr
