"""Several backends behind the fleet: three fake-ollamas (`--name b1..b3`, so every answer says
where it came from in X-Backend) behind three Tollgates sharing one redis-server, all on 127.0.0.1.

- A backend stopped while traffic runs: every client request still succeeds (failover before the first response
  byte), requests sent after it stopped go to the others, the backend is ejected, and it comes back when it
  answers again.
- A backend SIGKILLed mid-stream truncates that one stream; streams on the other backends complete.
- Model routing: a model only one backend has goes there; among backends with the model, the one that has it
  loaded (/api/ps) is preferred.

No durations are asserted: states another process reaches by itself are polled a bounded number of times.
Skipped when redis-server is not installed.
"""

from __future__ import annotations

import threading
import time

from conftest import MODEL
from fleet import (Client, Stream, fleets, generate_body, one_request, poll, say, start_backend)  # noqa: F401

HEALTH = ("--health-interval", "0.2", "--health-fails", "2")
OPEN_LIMITS = ("--rate", "0", "--max-inflight", "20", "--max-inflight-per-user", "20")


def backend_label(instance, backend) -> str | None:
    """The `backend` label an instance's metrics use for this backend (it names the backend's port)."""
    for label in instance.metrics().labels("tollgate_backend_healthy", "backend"):
        if label.endswith(f":{backend.port}") or label.endswith(f":{backend.port}/") or label == backend.name:
            return label
    return None


def healthy(fleet, backend) -> set[float]:
    """The tollgate_backend_healthy values every instance reports for `backend`."""
    return {inst.metric("tollgate_backend_healthy", backend=backend_label(inst, backend)) for inst in fleet.instances}


def wait_healthy(fleet, backends, value: float = 1) -> bool:
    return poll(lambda: all(healthy(fleet, b) == {value} for b in backends), attempts=100) is not None


def test_backend_stopped_mid_run_moves_traffic_without_client_errors(fleets, binaries, tmp_path, say):
    backends = [start_backend(binaries, tmp_path, f"b{k}") for k in (1, 2, 3)]
    fleet = fleets(backends=backends, extra=(*HEALTH, *OPEN_LIMITS))
    assert wait_healthy(fleet, backends), [inst.metrics().labels("tollgate_backend_healthy", "backend")
                                           for inst in fleet.instances]
    replies: list = []
    errors: list = []
    stop = threading.Event()

    def traffic(k: int) -> None:
        # One client per instance, one request after another, until told to stop.
        try:
            with Client([fleet.instances[k]]) as client:
                while not stop.is_set():
                    replies.append(client.request(0, "POST", "/api/generate", generate_body(tokens=4)))
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(e))

    threads = [threading.Thread(target=traffic, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        assert poll(lambda: len(replies) >= 60 or errors, attempts=300), "no traffic"
        served = {b.name: sum(r.headers.get("x-backend") == b.name for r in replies) for b in backends}
        victim = max(backends, key=lambda b: served[b.name])  # the busiest, so the move is visible whatever the order
        victim.proc.stop()
        stopped_time = time.monotonic()  # the process has exited: nothing it accepts from here on
        stopped_at = len(replies)
        assert poll(lambda: len(replies) >= stopped_at + 90 or errors, attempts=300), "traffic stalled"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    bad = [(r.status, r.body[:120]) for r in replies if r.status != 200]
    assert not bad, bad
    after = [r for r in replies if r.sent > stopped_time]
    moved = {b.name: sum(r.headers.get("x-backend") == b.name for r in after) for b in backends}
    failovers = fleet.sum_metric("tollgate_backend_failovers_total")
    say(f"before the stop {served}; {victim.name} stopped; after it {moved}; failovers {failovers:.0f}")
    # Until it was ejected, requests kept being routed to it: those failed over (which is why no client saw one).
    assert failovers >= 1, failovers
    assert moved[victim.name] == 0, moved
    assert sum(moved.values()) == len(after) and len(after) >= 60, (moved, len(after))
    assert all(r.json()["done"] is True for r in replies)

    assert poll(lambda: healthy(fleet, victim) == {0}, attempts=100), healthy(fleet, victim)
    ejections = [inst.metric("tollgate_backend_ejections_total", backend=backend_label(inst, victim))
                 for inst in fleet.instances]
    assert all(e is not None and e >= 1 for e in ejections), ejections  # each instance ejected it on its own

    # It answers again on its port: one successful check brings it back.
    back = start_backend(binaries, tmp_path, victim.name, port=victim.port)
    fleet.backends.append(back)
    assert wait_healthy(fleet, [back]), healthy(fleet, back)


def test_backend_killed_mid_stream_truncates_only_its_stream(fleets, binaries, tmp_path, say):
    """Three streams through one instance land on three backends (one in flight per backend by default); the
    backend under the first is SIGKILLed after two lines: that stream is cut off (no final chunk, no done line),
    the other two complete, and the next requests are served by the survivors."""
    backends = [start_backend(binaries, tmp_path, f"b{k}", tokens=100, interval_ms=20) for k in (1, 2, 3)]
    fleet = fleets(backends=backends, extra=(*HEALTH, *OPEN_LIMITS))
    assert wait_healthy(fleet, backends)
    entry = fleet.instances[0]
    streams = []
    try:
        for _ in range(3):
            streams.append(Stream(entry, tokens=100).head().read_lines(1))
        assert [s.status for s in streams] == [200, 200, 200]
        names = [s.headers.get("x-backend") for s in streams]
        assert sorted(names) == ["b1", "b2", "b3"], names
        for s in streams:
            s.read_lines(2)
        victim = next(b for b in backends if b.name == names[0])
        victim.kill()
        complete = [s.finish() for s in streams]
    finally:
        for s in streams:
            s.close()
    say(f"streams on {names}: {names[0]} SIGKILLed after 2 lines; complete: {complete}")
    assert complete == [False, True, True], complete
    assert b'"done":true' not in streams[0].body
    for k in range(6):
        r = one_request(fleet.instances[k % 3], "POST", "/api/generate", generate_body(tokens=2))
        assert r.status == 200 and r.headers.get("x-backend") in set(names[1:]), (r.status, r.headers, r.body[:120])


def test_model_routing_follows_tags_and_prefers_loaded(fleets, binaries, tmp_path, say):
    """b1 has mistral and alt (alt loaded), b2 has mistral (loaded), b3 has mistral and special (special loaded):
    special goes only to b3, alt only to b1, and mistral, one request at a time, to b2, the one with it loaded.
    A model no backend has gets 404."""
    backends = [
        start_backend(binaries, tmp_path, "b1", models=(MODEL, "alt:2b"), loaded=("alt:2b",)),
        start_backend(binaries, tmp_path, "b2", models=(MODEL,)),
        start_backend(binaries, tmp_path, "b3", models=(MODEL, "special:1b"), loaded=("special:1b",)),
    ]
    fleet = fleets(backends=backends, extra=(*HEALTH, *OPEN_LIMITS))
    assert wait_healthy(fleet, backends)

    def routed(model: str, want: str):
        # Model lists are polled at the health interval: wait until every instance routes `model` to `want`.
        def ok():
            return all(one_request(inst, "POST", "/api/generate", generate_body(model, tokens=2))
                       .headers.get("x-backend") == want for inst in fleet.instances)
        return poll(ok, attempts=100)

    for model, want in (("special:1b", "b3"), ("alt:2b", "b1"), (MODEL, "b2")):
        assert routed(model, want), f"{model} never routed to {want}"
        seen = []
        with Client(fleet.instances) as client:
            for k in range(9):
                r = client.request(k % 3, "POST", "/api/generate", generate_body(model, tokens=2))
                assert r.status == 200, (r.status, r.body[:120])
                seen.append(r.headers.get("x-backend"))
        say(f"{model}: {seen}")
        assert set(seen) == {want}, (model, seen)
    r = one_request(fleet.instances[0], "POST", "/api/generate", generate_body("nobody-has:1b", tokens=2))
    assert r.status == 404 and "error" in r.json(), (r.status, r.body[:200])
