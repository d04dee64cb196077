"""What an admin reads from a running Tollgate: `/metrics` parsed by Prometheus's own Python parser (types, `_total`
names, build info, the standard `process_*` series), scrapes kept out of the access log, and failures that tell the
client what went wrong while only the error log names the upstream's internal address."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from conftest import PASSWORD, USER, Proc, own_state_dir, wait_for_port, wait_until

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


def start_tollgate(binaries, users: Path, upstream_port: int, log_dir: Path, name: str, log: str) -> tuple:
    """A Tollgate on a plain listener with one worker and a metrics listener; returns (proc, port, metrics port)."""
    p = Proc(name, [str(binaries["tollgate"]), "serve", "--listen-plain", "127.0.0.1:0",
                    "--upstream", f"http://127.0.0.1:{upstream_port}", "--users", str(users), "--rate", "0",
                    "--workers", "1", "--metrics-listen", "127.0.0.1:0", "--log", log,
                    *own_state_dir((), log_dir, name)], log_dir).start(
        r"serving http://127\.0\.0\.1:(\d+)[\s\S]*metrics on http://127\.0\.0\.1:(\d+)/metrics")
    port, metrics_port = int(p.match.group(1)), int(p.match.group(2))
    wait_for_port("127.0.0.1", port)
    return p, port, metrics_port


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def families(metrics_port: int) -> dict:
    status, text = get(metrics_port, "/metrics")
    assert status == 200, text
    # The parser raises on anything that is not valid text exposition format.
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_parse_with_prometheus_client(binaries, users_file, fake_ollama, tmp_path):
    proc, port, metrics_port = start_tollgate(binaries, users_file, fake_ollama.port, tmp_path, "tollgate-metrics",
                                              "json")
    try:
        assert get(port, "/api/tags", AUTH)[0] == 200
        assert get(port, "/api/tags", AUTH)[0] == 200  # answered from the credential cache
        assert get(port, "/api/tags")[0] == 401
        found = families(metrics_port)
        # Counters: the parser names a counter family without its _total suffix, and its samples carry it.
        for f in found.values():
            if f.type == "counter":
                assert all(s.name.endswith(("_total", "_created")) for s in f.samples), f
            else:
                assert not f.name.endswith("_total"), f"{f.name} is typed {f.type} but named like a counter"
        for name in ("tollgate_auth_hashes_computed", "tollgate_auth_cache_hits", "tollgate_access_log_dropped_lines",
                     "tollgate_requests", "process_cpu_seconds"):
            assert name in found and found[name].type == "counter", (name, found.get(name))
        assert found["tollgate_auth_hashes_computed"].samples[0].value >= 1
        assert found["tollgate_auth_cache_hits"].samples[0].value >= 1

        info = found["tollgate_build_info"]
        assert info.type == "gauge" and len(info.samples) == 1 and info.samples[0].value == 1
        assert {"version", "swift", "openssl"} <= set(info.samples[0].labels), info.samples[0]

        for name in ("process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
                     "process_max_fds", "process_start_time_seconds"):
            assert name in found and found[name].type == "gauge", (name, found.get(name))
        value = {name: f.samples[0].value for name, f in found.items() if name.startswith("process_")}
        pid = proc.popen.pid
        assert abs(value["process_open_fds"] - len(os.listdir(f"/proc/{pid}/fd"))) <= 4, value
        assert value["process_open_fds"] < value["process_max_fds"]
        assert value["process_resident_memory_bytes"] > 1 << 20
        assert value["process_virtual_memory_bytes"] >= value["process_resident_memory_bytes"]
        assert time.time() - 600 < value["process_start_time_seconds"] <= time.time() + 1, value
        assert value["process_cpu_seconds"] > 0
    finally:
        proc.stop()


def test_scrapes_are_not_logged(binaries, users_file, fake_ollama, tmp_path):
    proc, port, metrics_port = start_tollgate(binaries, users_file, fake_ollama.port, tmp_path, "tollgate-scraped",
                                              "json")
    try:
        for _ in range(3):
            assert get(metrics_port, "/metrics")[0] == 200
        assert get(port, "/api/version", AUTH)[0] == 200

        def lines():
            return [json.loads(line) for line in proc.stdout_path.read_text().splitlines() if line.startswith("{")]

        # One worker writes its lines in order: once the request after the scrapes is logged, theirs would be too.
        assert wait_until(lambda: any(r["path"] == "/api/version" for r in lines())), proc.logs()
        assert [r["path"] for r in lines()] == ["/api/version"]
    finally:
        proc.stop()


def test_failures_do_not_show_the_upstream_address(binaries, users_file, tmp_path):
    # A bound socket that never listens: connecting to it is refused, and no one else can take the port.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    proc, port, _ = start_tollgate(binaries, users_file, dead_port, tmp_path, "tollgate-dead-upstream", "text")
    try:
        address = f"127.0.0.1:{dead_port}"
        status, body = get(port, "/readyz")
        assert status == 503 and json.loads(body)["status"] == "unavailable", body
        assert address not in body and str(dead_port) not in body, body
        status, body = get(port, "/api/tags", AUTH)
        assert status == 502 and json.loads(body)["error"].startswith("upstream unavailable"), body
        assert address not in body and str(dead_port) not in body, body
        status, body = get(port, "/v1/models", AUTH)
        assert status == 502 and str(dead_port) not in body, body
        # The error log names it, with the request id that finds the access-log line.
        assert wait_until(lambda: f"(upstream {address}, request " in proc.stderr_path.read_text()), proc.logs()
        assert wait_until(lambda: f"readiness: upstream {address} " in proc.stderr_path.read_text()), proc.logs()
        # The text access log: no first byte came, so no time to it either ("ttfb=-", not "ttfb=-ms").
        assert wait_until(lambda: proc.stdout_path.read_text().count("\n") >= 3), proc.logs()
        text = proc.stdout_path.read_text()
        assert " ttfb=- " in text and "-ms" not in text, text
    finally:
        proc.stop()
        dead.close()
