#!/usr/bin/env python3
"""Mixed traffic against one Tollgate for a soak (run by bench/soak; standard library only).

Each kind of client is a thread with its own loopback source address (127.0.0.x), so the per-address rate limit
applies to the flood client and the bad-password client only:

  stream      POST /api/generate, reads the whole NDJSON stream (~1 s)          expected: 200
  abort       POST /api/generate, closes the socket after 2 lines              expected: 200 (then client-aborted)
  short       GET /api/tags, paced below the rate limit                        expected: 200
  badpass     GET /api/tags with a wrong password                             expected: 401, then 429 (throttled)
  flood       GET /api/tags as fast as it can, from one address               expected: 200 and 429

Samples Tollgate's RSS and fd count every 10 s; at the end prints the figures and exits 1 on any unexpected
outcome or when RSS or fds grew by more than 5 % between warm-up and the end.
"""

from __future__ import annotations

import argparse
import base64
import collections
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time

EXPECTED = {"stream": {"200"}, "abort": {"200"}, "short": {"200"}, "badpass": {"401", "429"},
            "flood": {"200", "429"}}


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    def __init__(self, a):
        self.a = a
        self.ctx = ssl.create_default_context(cafile=a.ca)
        self.good = "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
        self.bad = "Basic " + base64.b64encode(f"{a.user}:wrong-{a.password}".encode()).decode()
        self.counts = collections.Counter()
        self.unexpected = collections.Counter()
        self.examples: dict = {}
        self.lock = threading.Lock()
        self.stop_at = time.monotonic() + a.seconds

    def record(self, kind: str, outcome: str, detail: str = "") -> None:
        with self.lock:
            self.counts[(kind, outcome)] += 1
            if outcome not in EXPECTED[kind]:
                self.unexpected[(kind, outcome)] += 1
                self.examples.setdefault((kind, outcome), detail[:300])

    def conn(self, source: str) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("localhost", self.a.port, context=self.ctx, timeout=60,
                                           source_address=(source, 0))

    def client(self, kind: str, source: str, pace: float) -> None:
        c = self.conn(source)
        body = json.dumps({"model": "mistral:7b", "prompt": "soak"})
        while time.monotonic() < self.stop_at:
            t0 = time.monotonic()
            try:
                if kind in ("stream", "abort"):
                    c.request("POST", "/api/generate", body=body,
                              headers={"Authorization": self.good, "Content-Type": "application/json"})
                else:
                    c.request("GET", "/api/tags", headers={"Authorization": self.bad if kind == "badpass" else self.good})
                r = c.getresponse()
                if kind == "abort" and r.status == 200:
                    r.readline(), r.readline()
                    c.close()  # vanish mid-stream
                    c = self.conn(source)
                    self.record(kind, "200")
                else:
                    data = r.read()
                    ok = r.status != 200 or kind != "stream" or b'"done":true' in data
                    self.record(kind, str(r.status) if ok else "200-incomplete", data.decode(errors="replace"))
                    if r.getheader("Connection", "").lower() == "close":
                        c.close()
                        c = self.conn(source)
            except Exception as e:  # noqa: BLE001 - every failure is an outcome to report
                self.record(kind, type(e).__name__, repr(e))
                c.close()
                c = self.conn(source)
                time.sleep(0.05)  # do not spin on a refused connection
            if pace:
                time.sleep(max(0.0, pace - (time.monotonic() - t0)))  # pacing below the rate limit
        c.close()

    def run(self) -> int:
        a = self.a
        plan = ([("stream", 0.0)] * a.streams + [("abort", 0.2)] * a.aborts + [("short", 1 / 150)] * a.shorts +
                [("badpass", 0.2), ("flood", 0.0)])
        threads = [threading.Thread(target=self.client, args=(kind, f"127.0.0.{10 + i}", pace), daemon=True)
                   for i, (kind, pace) in enumerate(plan)]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        samples = []  # (seconds, rss kB, fds)
        warm = min(60.0, a.seconds / 3)
        while time.monotonic() < self.stop_at:
            samples.append((time.monotonic() - t_start, rss_kb(a.pid), fds(a.pid)))
            el = samples[-1]
            total = sum(self.counts.values())
            print(f"soak: {el[0]:6.0f} s  rss {el[1] / 1024:6.1f} MB  fds {el[2]:4d}  requests {total}", flush=True)
            time.sleep(min(10.0, max(0.0, self.stop_at - time.monotonic())))  # sampling interval
        last = (time.monotonic() - t_start, rss_kb(a.pid), fds(a.pid))  # still under traffic
        for t in threads:
            t.join(timeout=90)
        time.sleep(2)  # let Tollgate close what the clients closed
        end = (time.monotonic() - t_start, rss_kb(a.pid), fds(a.pid))
        samples.append(end)
        w = min(samples, key=lambda s: abs(s[0] - warm))
        elapsed = end[0]
        total = sum(self.counts.values())
        drss = 100 * (max(end[1], last[1]) - w[1]) / w[1]
        dfds = 100 * (max(end[2], last[2]) - w[2]) / w[2]
        print()
        print(f"soak: {elapsed:.0f} s, {total} requests ({total / elapsed:.0f}/s)")
        print(f"RSS  after warm-up ({w[0]:.0f} s): {w[1] / 1024:.1f} MB   end of traffic: {last[1] / 1024:.1f} MB   "
              f"after: {end[1] / 1024:.1f} MB   {drss:+.1f} % (the higher end figure)")
        print(f"fds  after warm-up ({w[0]:.0f} s): {w[2]}   end of traffic: {last[2]}   after: {end[2]}   {dfds:+.1f} %")
        print("requests by outcome:")
        for (kind, outcome), n in sorted(self.counts.items()):
            print(f"  {kind:8s} {outcome:16s} {n}")
        if self.unexpected:
            print("UNEXPECTED outcomes:")
            for key, n in self.unexpected.items():
                print(f"  {key}: {n}  e.g. {self.examples[key]}")
        else:
            print("unexpected outcomes: none")
        failed = bool(self.unexpected) or drss > 5 or dfds > 5
        print("verdict:", "FAILED" if failed else "ok (RSS and fds within 5 %, no unexpected outcome)")
        return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser()
    for name in ("ca", "user", "password"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--seconds", type=float, default=1800)
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--aborts", type=int, default=2)
    p.add_argument("--shorts", type=int, default=4)
    return Soak(p.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
