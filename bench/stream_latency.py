#!/usr/bin/env python3
"""Measure how late each streamed NDJSON line of POST /api/generate arrives, per target.

For every line the upstream (fake-ollama) writes, it stamps `created_at` (RFC 3339, nanoseconds). This client
records when the line's last byte was read from the socket and reports arrival minus created_at. Going direct to
the upstream gives the floor; a proxy's figure minus direct's is what the proxy adds.

If created_at is not a usable timestamp (missing, unparsable, or not within the request's lifetime, e.g. a fixed
placeholder), it falls back to arrival relative to when the request was sent, and compares each line with the
same line number going direct ("relative" mode). That mode also counts the upstream's own pacing jitter and how
much later the upstream starts when the request came through a proxy, so it is noisier than the created_at mode.

Only the standard library, and a raw socket with its own chunked decoder: nothing may buffer the body.

Usage: stream_latency.py --target direct=http://127.0.0.1:11434 --target nginx=https://127.0.0.1:8443
                         --cafile ca.pem --requests 10 --num-predict 50
Prints one JSON object on stdout (see README.md for the fields).
"""

import argparse
import calendar
import json
import re
import socket
import ssl
import sys
import time
import urllib.parse

# perf_counter_ns is monotonic and precise; time_ns is the clock created_at comes from. Map one onto the other once.
_WALL_OFFSET_NS = time.time_ns() - time.perf_counter_ns()


def now_ns() -> int:
    """Wall-clock nanoseconds with perf_counter's resolution."""
    return time.perf_counter_ns() + _WALL_OFFSET_NS


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})$"
)


def parse_rfc3339_ns(text):
    """Nanoseconds since the epoch for an RFC 3339 timestamp, keeping every fractional digit; None if not one."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = m.group(7) or ""
    nanos = int((fraction + "000000000")[:9])
    zone = m.group(8)
    offset = 0
    if zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * (1 if zone[0] == "+" else -1)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    if year < 2000:  # a zero time.Time or a placeholder, not a real stamp
        return None
    return seconds * 1_000_000_000 + nanos


class BenchError(Exception):
    pass


class Connection:
    """One HTTP/1.1 connection (plain or TLS) that reads a response body incrementally, timestamping each read."""

    def __init__(self, url, cafile, timeout):
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=cafile)
            sock = ctx.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock
        self.buf = bytearray()
        self.reusable = True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self):
        data = self.sock.recv(65536)
        stamp = now_ns()
        if not data:
            raise BenchError("connection closed by server mid-response")
        self.buf += data
        return stamp

    def _take_line(self):
        """Remove and return one CRLF-terminated line from the buffer, or None if none is complete yet."""
        end = self.buf.find(b"\r\n")
        if end < 0:
            return None
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def request(self, path, body, extra_headers=()):
        """Send a POST and yield (decoded body bytes, arrival ns of the read that delivered them)."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUser-Agent: tollgate-bench\r\n"
            + "".join(f"{h}\r\n" for h in extra_headers)
            + f"Accept: application/x-ndjson\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + body)

        stamp = None
        while b"\r\n\r\n" not in self.buf:
            stamp = self._recv()
        end = self.buf.index(b"\r\n\r\n")
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        status = lines[0].split(" ", 2)
        if len(status) < 2 or status[1] != "200":
            raise BenchError(f"status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("connection", "").lower() == "close":
            self.reusable = False

        if "chunked" in headers.get("transfer-encoding", "").lower():
            yield from self._chunked(stamp)
        elif "content-length" in headers:
            remaining = int(headers["content-length"])
            while remaining > 0:
                if not self.buf:
                    stamp = self._recv()
                piece = bytes(self.buf[:remaining])
                del self.buf[: len(piece)]
                remaining -= len(piece)
                yield piece, stamp
        else:  # delimited by close
            self.reusable = False
            while True:
                if self.buf:
                    piece = bytes(self.buf)
                    self.buf.clear()
                    yield piece, stamp
                try:
                    stamp = self._recv()
                except BenchError:
                    return

    def _chunked(self, stamp):
        """Decode chunked framing as bytes arrive; yields each piece of chunk data as soon as it is read."""
        while True:
            size_line = self._take_line()
            while size_line is None:
                stamp = self._recv()
                size_line = self._take_line()
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BenchError(f"bad chunk size line {size_line!r}")
            if size == 0:
                while True:  # trailers up to the empty line
                    trailer = self._take_line()
                    while trailer is None:
                        self._recv()
                        trailer = self._take_line()
                    if trailer == b"":
                        return
            remaining = size
            while remaining > 0:
                if not self.buf:
                    stamp = self._recv()
                piece = bytes(self.buf[:remaining])
                del self.buf[: len(piece)]
                remaining -= len(piece)
                yield piece, stamp
            while len(self.buf) < 2:
                stamp = self._recv()
            if self.buf[:2] != b"\r\n":
                raise BenchError("chunk data not followed by CRLF")
            del self.buf[:2]


def one_request(conn, body, extra_headers):
    """Run one generate request; returns send time and [(arrival_ns, created_at_ns or None)] per NDJSON line."""
    sent = now_ns()
    pending = bytearray()
    lines = []
    done = False
    for piece, stamp in conn.request("/api/generate", body, extra_headers):
        pending += piece
        while True:
            nl = pending.find(b"\n")
            if nl < 0:
                break
            raw = bytes(pending[:nl])
            del pending[: nl + 1]
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                raise BenchError(f"non-JSON line in stream: {raw[:80]!r}")
            if "error" in obj:
                raise BenchError(f"error line in stream: {obj['error']}")
            lines.append((stamp, parse_rfc3339_ns(obj.get("created_at"))))
            done = done or obj.get("done") is True
    if not done:
        raise BenchError("stream ended without a \"done\": true line")
    return sent, lines


def percentile(values, q):
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", action="append", required=True, help="NAME=URL; the one named 'direct' is the floor")
    ap.add_argument("--cafile", help="CA certificate for https targets")
    ap.add_argument("--requests", type=int, default=10, help="measured requests per target (after one warm-up)")
    ap.add_argument("--num-predict", type=int, default=50, help="lines per response")
    ap.add_argument("--timeout", type=float, default=30.0, help="socket timeout, seconds")
    ap.add_argument("--header", action="append", default=[], help="extra request header 'Name: value' (repeatable)")
    args = ap.parse_args()

    targets = []
    for spec in args.target:
        name, _, url = spec.partition("=")
        targets.append((name, url))
    body = json.dumps(
        {"model": "mistral:7b", "prompt": "hi", "options": {"num_predict": args.num_predict}}
    ).encode()

    conns = {}
    runs = {name: [] for name, _ in targets}
    errors = {name: [] for name, _ in targets}
    for round_no in range(args.requests + 1):  # round 0 is the warm-up (connects, fills upstream pools)
        # Rotate the order every round so no target always goes first on a just-idle machine.
        shift = round_no % len(targets)
        for name, url in targets[shift:] + targets[:shift]:
            if len(errors[name]) >= 3:
                continue  # give up on a target that keeps failing
            try:
                conn = conns.get(name)
                if conn is None:
                    conn = conns[name] = Connection(url, args.cafile, args.timeout)
                sent, lines = one_request(conn, body, args.header)
                if not conn.reusable:
                    conn.close()
                    conns.pop(name, None)
                if round_no > 0:
                    runs[name].append((sent, lines))
            except (OSError, BenchError, ValueError) as exc:
                errors[name].append(f"{type(exc).__name__}: {exc}")
                if name in conns:
                    conns.pop(name).close()
    for conn in conns.values():
        conn.close()

    # created_at is usable only if it is the moment the line was written: not missing, not a fixed placeholder.
    # Allow 1 s of slack before the request (clock reads) and 5 ms after arrival (perf_counter vs time_ns mapping).
    stamped = any(rs for rs in runs.values()) and all(
        created is not None and sent - 1_000_000_000 <= created <= arrival + 5_000_000
        for rs in runs.values() for sent, ls in rs for arrival, created in ls
    )
    mode = "created_at" if stamped else "relative"

    # Relative mode: the floor for line i is the median arrival offset of line i going direct.
    floor = {}
    if mode == "relative":
        per_index = {}
        for sent, lines in runs.get("direct", []):
            for i, (arrival, _) in enumerate(lines):
                per_index.setdefault(i, []).append(arrival - sent)
        floor = {i: percentile(v, 50) for i, v in per_index.items()}

    result = {"mode": mode, "requests": args.requests, "num_predict": args.num_predict, "targets": {}}
    for name, _ in targets:
        first_line, delays, line_count = [], [], 0
        for sent, lines in runs[name]:
            line_count += len(lines)
            if lines:
                first_line.append(lines[0][0] - sent)
            for i, (arrival, created) in enumerate(lines):
                if mode == "created_at":
                    delays.append(arrival - created)
                elif i in floor:
                    delays.append(arrival - sent - floor[i])
        ms = lambda ns: None if ns is None else ns / 1e6
        result["targets"][name] = {
            "requests_ok": len(runs[name]),
            "lines": line_count,
            "first_line_ms_p50": ms(percentile(first_line, 50)),
            "first_line_ms_max": ms(max(first_line) if first_line else None),
            "delay_ms_p50": ms(percentile(delays, 50)),
            "delay_ms_p99": ms(percentile(delays, 99)),
            "delay_ms_max": ms(max(delays) if delays else None),
            "errors": errors[name],
        }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
