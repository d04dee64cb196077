"""Shared limits across real processes: three Tollgates, one redis-server, fake-ollama behind them,
all on 127.0.0.1. The default per-address limit (10 r/s, burst 20, nginx `limit_req ... nodelay`) must hold for the
fleet as a whole, whichever instance a request lands on; so must the global and per-user inference caps and the
failed-login throttle; a SIGKILLed instance's slots come back within the lease; Redis going away gives the
configured fallback (local at rate/N and caps/N, open, or closed with 503), and its return ends it. The flood also
counts Redis calls per admitted request.

Counts are checked against the time the client measured, never against a fixed duration: a request is admitted at
some moment between the client's send and its receipt of the answer, so every bound below brackets the server's
moments with the client's. Each test uses a client address of its own (X-Forwarded-For from the trusted
127.0.0.1), so no test sees another's bucket. Skipped when redis-server is not installed.
"""

from __future__ import annotations

import base64
import math
import select
import time

from conftest import MODEL, USER, WRONG_PASSWORD
from fleet import (Client, Stream, fleets, fresh_client_address, generate_body, one_request, poll,  # noqa: F401
                   say, start_backend)

RATE = 10.0  # the default --rate (the concurrency tests turn it off, so every 429 there is a slot refusal)
BURST = 20  # the default --burst
INTERVAL = 1 / RATE
FLOOD_SECONDS = 10.0
# A server-side interval between two admissions is at least INTERVAL; the client brackets it with its own clock,
# which may read up to a millisecond short of Redis's (TIME has µs resolution, the client's monotonic clock ns), and
# Redis's TIME is the wall clock, which NTP may slew by up to 500 ppm against the monotonic one (0.75 ms over the
# 1.5 s paced flood): a CI run once measured an admission 0.1 ms past the old 1 ms slack.
CLOCK_SLACK = 0.002
LEASE_SLACK = 0.05


def flood(client: Client, seconds: float) -> list:
    """Requests one after another, round-robin over the client's connections, for `seconds` and half an interval
    more (so the window does not end right at an admission's moment, where the count would depend on which side
    of it the last request fell); all replies."""
    replies = []
    conns = len(client.conns)
    start = None
    k = 0
    while start is None or replies[-1].sent - start < seconds + INTERVAL / 2:
        r = client.request(k % conns)
        start = start if start is not None else r.sent
        replies.append(r)
        k += 1
    return replies


def check_rejections(replies) -> None:
    for r in replies:
        assert r.status in (200, 429), (r.status, r.body[:200])
        if r.status == 429:
            assert r.headers.get("retry-after", "").isdigit() and int(r.headers["retry-after"]) >= 1, r.headers


def burst(client: Client, n: int) -> list:
    """`n` requests written on `n` connections before any answer is read: as simultaneous as a client can be."""
    for k in range(n):
        client.send(k)
    return [client.receive(k) for k in range(n)]


def test_flood_over_three_instances_admits_the_nginx_count(fleets, say):
    """One client, round-robin over three instances as fast as answers come, for ~10 s: nginx admits the burst
    plus one request per interval, 21 + floor(window / 0.1 s), ±1, where the window runs from the first request
    to the last. Also: at most one Redis call per admitted request plus a bounded number per rejection streak."""
    fleet = fleets()
    calls_before = fleet.sum_metric("tollgate_redis_calls_total")
    evalsha_before = fleet.redis.command_calls().get("evalsha", 0)
    with Client(fleet.instances, fresh_client_address()) as client:
        replies = flood(client, FLOOD_SECONDS)
    calls = fleet.sum_metric("tollgate_redis_calls_total") - calls_before
    evalsha = fleet.redis.command_calls().get("evalsha", 0) - evalsha_before
    check_rejections(replies)
    admitted = sum(r.status == 200 for r in replies)
    window = replies[-1].sent - replies[0].sent
    expected = BURST + 1 + math.floor(window / INTERVAL)
    per_instance = [sum(r.status == 200 for r in replies if r.instance == k) for k in range(3)]
    say(f"flood {len(replies)} requests over {window:.2f} s through 3 instances: admitted {admitted} "
        f"(expected {expected} +-1; per instance {per_instance}); Redis calls {calls:.0f} by the metric, "
        f"{evalsha} EVALSHA by INFO commandstats = {calls / max(admitted, 1):.2f} per admitted request")
    assert abs(admitted - expected) <= 1, (admitted, expected, window)
    assert all(n > 0 for n in per_instance), per_instance  # every instance admitted some: the bucket is shared
    # Each admission is one call. The "denied until" cache is one per process, and an admission that leaves nothing
    # fills it with the next deadline, so between two admissions each other instance learns the new deadline with
    # one call (its first request after the previous deadline goes to Redis): at most 1 + (instances - 1) calls per
    # admission period, whatever the flood's size, plus a tenth for a cached deadline that ends a moment before
    # Redis's own (the loop's clock reads a send time early).
    assert calls >= admitted, (calls, admitted)
    assert calls <= admitted + (len(fleet.instances) - 1) * (admitted + 1) + admitted // 10, (calls, admitted, len(replies))
    assert calls < len(replies) / 10, (calls, len(replies))  # the flood itself costs (almost) nothing


def test_burst_then_one_per_interval_across_instances(fleets, say):
    """25 requests at once spread over the three instances: 21 pass, 4 get 429; then, requesting on, one more
    passes per 100 ms (the k-th no sooner than k × 100 ms after the burst), whichever instance they land on."""
    fleet = fleets()
    with Client(fleet.instances, fresh_client_address(), connections_per_instance=9) as client:
        order = [k * 9 + j for j in range(9) for k in range(3)][:25]  # interleaved: instance 1, 2, 3, 1, 2, 3...
        client.conns = [client.conns[k] for k in order]
        client.owner = [client.owner[k] for k in order]
        first = burst(client, 25)
        check_rejections(first)
        admitted = sum(r.status == 200 for r in first)
        window = max(r.received for r in first) - min(r.sent for r in first)
        say(f"burst of 25 over 3 instances in {window * 1000:.1f} ms: {admitted} admitted "
            f"(by instance {[sum(r.status == 200 for r in first if r.instance == k) for k in range(3)]})")
        # 21 exactly when the burst took under 100 ms (the usual case); a slower machine may leak one more per 100 ms.
        assert BURST + 1 <= admitted <= BURST + 1 + math.floor(window / INTERVAL), (admitted, window)

        paced = flood(client, 1.5)
    check_rejections(paced)
    passes = [r for r in paced if r.status == 200]
    # nginx's arithmetic: the k-th admission after the burst comes no sooner than k intervals after the burst's
    # first admission (which happened after the first burst request was sent), and, while the client keeps asking,
    # no later than k intervals after the burst's last answer plus one request's round trip. A client that stalls
    # may see two admissions close together afterwards (the bucket drained meanwhile): that is still nginx.
    burst_began = min(r.sent for r in first)
    burst_ended = max(r.received for r in first)
    for k, p in enumerate(passes, start=1):
        assert p.received - burst_began >= k * INTERVAL - CLOCK_SLACK, (
            f"admission {k} after the burst came {p.received - burst_began:.4f} s after it began")
    end = paced[-1]
    most = math.floor((end.received - burst_began + CLOCK_SLACK) / INTERVAL)
    least = math.floor((end.sent - burst_ended) / INTERVAL) - 1
    say(f"then {len(passes)} more admitted in {end.received - burst_began:.2f} s "
        f"(bounds {least}..{most}), on instances {[p.instance + 1 for p in passes]}")
    assert least <= len(passes) <= most, (len(passes), least, most)
    assert len({p.instance for p in passes}) > 1, "admissions after the burst all came from one instance"


def test_global_inference_cap_holds_across_instances(fleets, binaries, tmp_path, say):
    """--max-inflight 3 with a per-user cap above it and no queue: of 7 slow streams opened one after another over
    the three instances, exactly the first 3 run and the other 4 get 429; closing one frees a slot fleet-wide."""
    backend = start_backend(binaries, tmp_path, "slow", tokens=2000, interval_ms=20)
    fleet = fleets(backends=[backend],
                   extra=("--max-inflight", "3", "--max-inflight-per-user", "10", "--rate", "0", "--queue", "0"))
    address = fresh_client_address()
    streams = []
    try:
        for k in range(7):
            s = Stream(fleet.instances[k % 3], tokens=2000, address=address).head()
            streams.append(s)
            if s.status == 200:
                s.read_lines(1)
        statuses = [s.status for s in streams]
        say(f"7 streams over 3 instances with a fleet cap of 3: statuses {statuses}")
        assert statuses == [200, 200, 200, 429, 429, 429, 429], statuses
        for s in streams[3:]:
            assert s.headers.get("retry-after"), s.headers
        # The fleet's leases, as Redis holds them (SharedLeases' global sorted set): one per running stream.
        assert fleet.redis.cli("ZCARD", "tollgate:{inflight}:global").strip() == "3"
        held = [inst.metric("tollgate_inference_in_flight") for inst in fleet.instances]
        assert held == [1, 1, 1], held  # and each instance counts the one it holds
        streams[1].close()  # instance 2's stream ends: its lease is released

        def freed():
            r = one_request(fleet.instances[2], "POST", "/api/generate", generate_body(tokens=2), address)
            assert r.status in (200, 429), (r.status, r.body[:200])
            return r.status == 200
        after = poll(freed, attempts=50)
        assert after, "no slot came free after a stream ended"
    finally:
        for s in streams:
            s.close()


def test_per_user_cap_holds_across_instances(fleets, binaries, tmp_path):
    """--max-inflight-per-user 1: a user streaming through one instance is refused a second stream on another
    (429 at once with no queue), and gets it once the first ends."""
    backend = start_backend(binaries, tmp_path, "slow", tokens=2000, interval_ms=20)
    fleet = fleets(backends=[backend], extra=("--max-inflight", "10", "--max-inflight-per-user", "1",
                                              "--rate", "0", "--queue", "0"))
    first = Stream(fleet.instances[0], tokens=2000).head()
    try:
        assert first.status == 200
        first.read_lines(1)
        for inst in fleet.instances[1:]:
            r = one_request(inst, "POST", "/api/generate", generate_body(tokens=2))
            assert r.status == 429 and r.headers.get("retry-after"), (r.status, r.headers, r.body[:200])
    finally:
        first.close()

    def freed():
        r = one_request(fleet.instances[2], "POST", "/api/generate", generate_body(tokens=2))
        assert r.status in (200, 429), (r.status, r.body[:200])
        return r.status == 200
    assert poll(freed, attempts=50), "the user's slot did not come back after the stream ended"


def test_queued_request_gets_a_slot_freed_on_another_instance(fleets, binaries, tmp_path):
    """With a wait queue, a request over the fleet cap waits on its own instance and runs once a stream on a
    different instance ends."""
    backend = start_backend(binaries, tmp_path, "slow", tokens=2000, interval_ms=20)
    fleet = fleets(backends=[backend], extra=("--max-inflight", "2", "--max-inflight-per-user", "10", "--rate", "0",
                                              "--queue", "4", "--queue-timeout", "30"))
    address = fresh_client_address()
    streams = [Stream(fleet.instances[0], tokens=2000, address=address).head().read_lines(1),
               Stream(fleet.instances[1], tokens=2000, address=address).head().read_lines(1)]
    try:
        assert [s.status for s in streams] == [200, 200]
        with Client([fleet.instances[2]], address) as client:
            client.send(0, "POST", "/api/generate", generate_body(tokens=2))
            sock = client.conns[0].sock
            waiting, _, _ = select.select([sock], [], [], 0.5)
            assert not waiting, "the request over the cap was answered at once instead of waiting"
            streams[0].close()
            r = client.receive(0)
            assert r.status == 200, (r.status, r.body[:200])
            assert r.json()["done"] is True
    finally:
        for s in streams:
            s.close()


def test_killed_instance_slots_return_within_the_lease(fleets, binaries, tmp_path, say):
    """--slot-lease 2: an instance holding the whole fleet's cap is SIGKILLed (it releases nothing); the others
    refuse at first, and get a slot once its leases run out, within the lease time."""
    lease = 2.0
    backend = start_backend(binaries, tmp_path, "slow", tokens=2000, interval_ms=20)
    fleet = fleets(backends=[backend], extra=("--max-inflight", "2", "--max-inflight-per-user", "10", "--rate", "0",
                                              "--queue", "0", "--slot-lease", str(lease)))
    address = fresh_client_address()
    streams = [Stream(fleet.instances[0], tokens=2000, address=address).head().read_lines(1) for _ in range(2)]
    try:
        assert [s.status for s in streams] == [200, 200]
        refused = one_request(fleet.instances[1], "POST", "/api/generate", generate_body(tokens=2), address)
        assert refused.status == 429, (refused.status, refused.body[:200])
        fleet.instances[0].kill()
        killed_at = time.monotonic()  # it is dead: its last heartbeat was before this
        # Right after the kill the leases are still there: nobody released them, and they are at most lease/3 old.
        still = one_request(fleet.instances[1], "POST", "/api/generate", generate_body(tokens=2), address)
        assert still.status == 429, (still.status, still.body[:200])
        refusals = [still]

        def slot():
            r = one_request(fleet.instances[1 + len(refusals) % 2], "POST", "/api/generate",
                            generate_body(tokens=2), address)
            assert r.status in (200, 429), (r.status, r.body[:200])
            if r.status == 429:
                refusals.append(r)
                return None
            return r
        got = poll(slot, attempts=int(4 * lease / 0.1))
        assert got is not None, f"no slot came back within {4 * lease} s of the kill"
        # The slots came back between the last refusal's sending and the first admission's answer.
        last_refused = refusals[-1].sent - killed_at
        say(f"slots of a SIGKILLed instance came back between {last_refused:.2f} s and "
            f"{got.received - killed_at:.2f} s after the kill (lease {lease} s)")
        # A refusal decided after `lease` had passed since the kill would mean a lease outlived its time (the
        # slack covers Redis's wall clock against the client's monotonic one).
        assert last_refused < lease + LEASE_SLACK, last_refused
    finally:
        for s in streams:
            s.close()


def fleet_burst_admits(fleet) -> int:
    """A fresh address sends 25 requests at once spread over the fleet; how many were admitted."""
    with Client(fleet.instances, fresh_client_address(), connections_per_instance=9) as client:
        replies = burst(client, 25)
    check_rejections(replies)
    return sum(r.status == 200 for r in replies)


def wake(fleet):
    """A request to every running instance (from a throwaway address), so a Redis failure or return gets seen."""
    def trigger():
        for inst in fleet.instances:
            if inst.alive:
                one_request(inst, address=fresh_client_address())
    return trigger


def test_redis_down_falls_back_to_local_rate_over_n_then_recovers(fleets, say):
    """--redis-fallback local (the default) with --fleet-size 3: Redis stopped, each instance limits on its own at
    rate/3 (burst/3, rounded up), and the fallback shows in metrics; Redis restarted on the same port, the
    fallback ends by itself and the fleet shares one bucket again."""
    fleet = fleets()
    assert fleet.wait_all("tollgate_redis_up", 1, trigger=wake(fleet)), "redis never came up"
    assert fleet.wait_all("tollgate_redis_fallback", 0, limiter="rate")
    assert fleet_burst_admits(fleet) == BURST + 1

    fleet.redis.stop()
    assert fleet.wait_all("tollgate_redis_fallback", 1, trigger=wake(fleet), limiter="rate"), \
        [i.metrics().labels("tollgate_redis_fallback", "limiter") for i in fleet.instances]
    assert fleet.wait_all("tollgate_redis_up", 0)
    with Client(fleet.instances, fresh_client_address()) as client:
        replies = flood(client, 2.0)
    check_rejections(replies)
    n = len(fleet.instances)
    local_rate = RATE / n
    local_burst = math.ceil(BURST / n)
    per_instance = []
    for k in range(n):
        mine = [r for r in replies if r.instance == k]
        admitted = sum(r.status == 200 for r in mine)
        window = mine[-1].sent - mine[0].sent
        expected = local_burst + 1 + math.floor(window * local_rate)
        per_instance.append((admitted, expected))
    say(f"Redis down, local fallback at rate/{n}: admitted, expected per instance {per_instance}")
    for admitted, expected in per_instance:
        assert abs(admitted - expected) <= 1, per_instance

    fleet.redis.start()
    assert fleet.wait_all("tollgate_redis_fallback", 0, trigger=wake(fleet), limiter="rate"), \
        [i.metrics().labels("tollgate_redis_fallback", "limiter") for i in fleet.instances]
    assert fleet.wait_all("tollgate_redis_up", 1)
    calls = fleet.sum_metric("tollgate_redis_calls_total")
    assert fleet_burst_admits(fleet) == BURST + 1  # one shared bucket again, not three local ones
    assert fleet.sum_metric("tollgate_redis_calls_total") > calls


def test_redis_down_fallback_open_lets_everything_through(fleets):
    fleet = fleets(extra=("--redis-fallback", "open"))
    fleet.redis.stop()
    assert fleet.wait_all("tollgate_redis_fallback", 1, trigger=wake(fleet), limiter="rate")
    with Client(fleet.instances, fresh_client_address()) as client:
        replies = [client.request(k % 3) for k in range(3 * (BURST + 1))]
    window = replies[-1].received - replies[0].sent
    assert [r.status for r in replies] == [200] * len(replies)
    assert len(replies) > BURST + 2 + math.floor(window / INTERVAL), window  # more than any limit would admit


def test_redis_down_fallback_closed_answers_503_then_recovers(fleets):
    """--redis-fallback closed: 503 with Retry-After: 1 and the family's JSON error while Redis is down; health
    checks do not depend on Redis; after Redis returns, requests pass again."""
    fleet = fleets(extra=("--redis-fallback", "closed"))
    fleet.redis.stop()
    address = fresh_client_address()

    def closed():
        r = one_request(fleet.instances[0], address=address)
        return r if r.status == 503 else None
    r = poll(closed, attempts=50)
    assert r is not None, "no 503 while Redis is down"
    assert r.headers.get("retry-after") == "1", r.headers
    assert "shared limits unavailable" in r.json()["error"], r.body
    for inst in fleet.instances:
        r = one_request(inst, path="/v1/models", address=address)
        assert r.status == 503 and r.headers.get("retry-after") == "1", (r.status, r.headers)
        err = r.json()["error"]
        assert "shared limits unavailable" in err["message"] and {"message", "type"} <= set(err), r.body
        assert one_request(inst, path="/healthz").status == 200
    assert fleet.wait_all("tollgate_redis_fallback", 1, limiter="rate")

    fleet.redis.start()
    assert fleet.wait_all("tollgate_redis_fallback", 0, trigger=wake(fleet), limiter="rate")
    for inst in fleet.instances:
        r = one_request(inst, "POST", "/api/generate", generate_body(MODEL, tokens=2), fresh_client_address())
        assert r.status == 200, (r.status, r.body[:200])


def test_redis_down_slots_fall_back_to_caps_over_n_then_recover(fleets, binaries, tmp_path, say):
    """--max-inflight 3 over a fleet of 3: with Redis down each instance runs at most ceil(3/3) = 1 stream of its
    own (the slots limiter shows its fallback); with Redis back, the cap is fleet-wide again."""
    backend = start_backend(binaries, tmp_path, "slow", tokens=2000, interval_ms=20)
    fleet = fleets(backends=[backend], extra=("--max-inflight", "3", "--max-inflight-per-user", "10", "--rate", "0",
                                              "--queue", "0"))
    address = fresh_client_address()
    fleet.redis.stop()
    streams = []
    try:
        for k in (0, 0, 1, 1):
            s = Stream(fleet.instances[k], tokens=2000, address=address).head()
            streams.append(s)
            if s.status == 200:
                s.read_lines(1)
        statuses = [s.status for s in streams]
        say(f"Redis down, 2 streams on each of 2 instances with a local cap of 1: {statuses}")
        assert statuses == [200, 429, 200, 429], statuses
        assert [inst.metric("tollgate_redis_fallback", limiter="slots") for inst in fleet.instances[:2]] == [1, 1]
    finally:
        for s in streams:
            s.close()

    fleet.redis.start()

    def shared_again():
        for inst in fleet.instances:
            r = one_request(inst, "POST", "/api/generate", generate_body(tokens=2), address)
            assert r.status in (200, 429), (r.status, r.body[:200])
        return all(inst.metric("tollgate_redis_fallback", limiter="slots") == 0 for inst in fleet.instances)
    assert poll(shared_again, attempts=100), "the slots limiter stayed in fallback after Redis came back"
    streams = []
    try:
        for k in range(4):
            s = Stream(fleet.instances[k % 3], tokens=2000, address=address).head()
            streams.append(s)
            if s.status == 200:
                s.read_lines(1)
        assert [s.status for s in streams] == [200, 200, 200, 429], [s.status for s in streams]
    finally:
        for s in streams:
            s.close()


def test_failed_logins_are_throttled_fleet_wide(fleets):
    """The failed-login throttle (10 failures per address per window) counts failures on every instance: after 10
    wrong passwords spread over three instances (at most 4 on any one), the address is refused everywhere, even
    with the right password, with 429 and Retry-After."""
    # A window of an hour: the bucket drains one failure per 6 minutes, not per 6 seconds, so ten bcrypt checks on a
    # busy machine all still count when the last one lands (the arithmetic is the local throttle's, tested there).
    fleet = fleets(extra=("--login-fail-window", "3600"))
    address = fresh_client_address()
    wrong = "Basic " + base64.b64encode(f"{USER}:{WRONG_PASSWORD}".encode()).decode()
    with Client(fleet.instances, address, auth=wrong) as client:
        failures = [client.request(k % 3) for k in range(10)]
    assert [r.status for r in failures] == [401] * 10, [r.status for r in failures]
    for inst in fleet.instances:
        r = one_request(inst, address=address)
        assert r.status == 429, (r.status, r.body[:200])
        assert int(r.headers.get("retry-after", "0")) >= 1, r.headers
        assert "failed logins" in r.json()["error"], r.body
    assert one_request(fleet.instances[0], address=fresh_client_address()).status == 200  # only that address
