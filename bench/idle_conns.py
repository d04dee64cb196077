#!/usr/bin/env python3
"""Resident memory of a server holding many idle keep-alive TLS connections.

  idle_conns.py rss  --pid PID
      Print the memory of PID and all its descendants (nginx master + workers, or Tollgate's one process).

  idle_conns.py cpu  --pid PID
      Print the CPU time (user + system, seconds) used so far by PID and all its descendants.

  idle_conns.py hold --url https://127.0.0.1:8443 --cafile ca.pem --pid PID --conns 10000 --hold 5
      Measure memory, open --conns TLS connections (at most --parallel handshakes at a time), send one
      GET /api/version on each and read the whole response, so every connection is an idle keep-alive one and not
      one still waiting for its first request head. Measure memory with all of them open, hold them --hold seconds,
      check a sample still answers, close them all and measure once more.

Memory is the sum of VmRSS from /proc/PID/status over the process tree (what `ps` shows); Pss from
/proc/PID/smaps_rollup is reported too, since summing RSS counts pages shared between nginx's processes twice.
Prints one JSON object on stdout. Only the standard library.
"""

import argparse
import asyncio
import json
import os
import resource
import ssl
import sys
import time
import urllib.parse


def process_tree(root):
    """root and every descendant, found by scanning /proc/*/stat for parent ids."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # comm may hold spaces and parentheses
        children.setdefault(ppid, []).append(int(entry))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def _field_kb(path, name):
    with open(path) as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def memory(root):
    """{"rss_kb", "pss_kb", "processes"} summed over root's process tree."""
    rss = pss = count = 0
    for pid in process_tree(root):
        try:
            rss += _field_kb(f"/proc/{pid}/status", "VmRSS")
            count += 1
            pss += _field_kb(f"/proc/{pid}/smaps_rollup", "Pss")
        except OSError:
            pass  # exited meanwhile, or smaps_rollup unreadable
    if count == 0:
        raise SystemExit(f"no process {root}")
    return {"rss_kb": rss, "pss_kb": pss, "processes": count}


def cpu_seconds(root):
    """User + system CPU seconds used so far by root's process tree (threads included)."""
    ticks = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


async def read_response(reader):
    """Read one whole response (Content-Length or chunked); returns the status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            await reader.readexactly(size + 2)
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status


class Holder:
    def __init__(self, args):
        parts = urllib.parse.urlsplit(args.url)
        self.host, self.port = parts.hostname, parts.port or 443
        self.request = (
            f"GET /api/version HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUser-Agent: tollgate-bench\r\n"
            + "".join(f"{h}\r\n" for h in args.header)
            + "\r\n"
        ).encode()
        self.ctx = ssl.create_default_context(cafile=args.cafile)
        self.timeout = args.timeout
        self.conns = []
        self.errors = {}

    async def open_one(self, gate):
        async with gate:
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=self.ctx, server_hostname=self.host),
                    self.timeout,
                )
                writer.write(self.request)
                status = await asyncio.wait_for(read_response(reader), self.timeout)
                if status != 200:
                    raise RuntimeError(f"status {status}")
                self.conns.append((reader, writer))
            except Exception as exc:  # count every kind of failure, keep going
                key = f"{type(exc).__name__}: {exc}"[:120]
                self.errors[key] = self.errors.get(key, 0) + 1
                if writer is not None:
                    writer.transport.abort()

    async def still_answering(self, sample):
        ok = 0
        for reader, writer in self.conns[:: max(1, len(self.conns) // sample)][:sample]:
            try:
                writer.write(self.request)
                if await asyncio.wait_for(read_response(reader), self.timeout) == 200:
                    ok += 1
            except Exception:
                pass
        return ok


async def hold(args):
    out = {"target_conns": args.conns}
    out["before"] = memory(args.pid)
    holder = Holder(args)
    gate = asyncio.Semaphore(args.parallel)
    started = time.monotonic()
    await asyncio.gather(*(holder.open_one(gate) for _ in range(args.conns)))
    out["open_seconds"] = round(time.monotonic() - started, 2)
    out["opened"] = len(holder.conns)
    out["errors"] = holder.errors
    await asyncio.sleep(1.0)  # let the server settle after the last handshake
    out["with_conns"] = memory(args.pid)
    await asyncio.sleep(max(0.0, args.hold - 1.0))
    end_of_hold = memory(args.pid)
    if end_of_hold["rss_kb"] > out["with_conns"]["rss_kb"]:
        out["with_conns"] = end_of_hold  # report the higher of the two readings
    sample = min(100, len(holder.conns))
    out["alive_after_hold"] = f"{await holder.still_answering(sample)}/{sample}"
    for _, writer in holder.conns:
        writer.transport.abort()
    holder.conns.clear()
    await asyncio.sleep(1.0)
    out["after_close"] = memory(args.pid)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    rss = sub.add_parser("rss", help="print the memory of a process tree")
    rss.add_argument("--pid", type=int, required=True)
    cpu = sub.add_parser("cpu", help="print the CPU seconds used by a process tree")
    cpu.add_argument("--pid", type=int, required=True)
    hp = sub.add_parser("hold", help="open, hold and close idle keep-alive TLS connections")
    hp.add_argument("--url", required=True, help="https://HOST:PORT of the server")
    hp.add_argument("--cafile", required=True)
    hp.add_argument("--pid", type=int, required=True, help="server process (its descendants are included)")
    hp.add_argument("--conns", type=int, default=10000)
    hp.add_argument("--parallel", type=int, default=200, help="handshakes in flight at once")
    hp.add_argument("--hold", type=float, default=5.0, help="seconds to keep them open")
    hp.add_argument("--timeout", type=float, default=30.0, help="per connect / per response, seconds")
    hp.add_argument("--header", action="append", default=[], help="extra request header 'Name: value' (repeatable)")
    args = ap.parse_args()

    if args.command == "rss":
        result = memory(args.pid)
    elif args.command == "cpu":
        result = {"cpu_s": cpu_seconds(args.pid)}
    else:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard != resource.RLIM_INFINITY and args.conns + 100 > hard:
            raise SystemExit(f"open-file limit {hard} is too low for {args.conns} connections")
        result = asyncio.run(hold(args))
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
