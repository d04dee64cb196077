#!/usr/bin/env python3
"""Clients for bench/auth's isolation figure (standard library only; prints JSON on stdout).

  auth_clients.py probe --port P --header 'Authorization: Basic ...' --stop-file F
      One keep-alive TLS connection. Sends one request (so the credential is verified and cached), prints
      "ready" on stderr, then sends GET /api/version back to back until F exists, recording for each request
      the CLOCK_MONOTONIC time it was sent and its latency (send to last byte of the response).

  auth_clients.py storm --port P --users-json FILE
      One TLS connection per user of FILE ([[user, password], ...]), all handshakes done first; then every
      thread sends its GET /api/version with its own Basic credentials at once (after a barrier) and reads the
      answer. Reports the first send and the last answer (CLOCK_MONOTONIC) and each login's status and time.

Both use CLOCK_MONOTONIC (time.monotonic), shared across processes, so bench/auth can place every probe request
inside or outside the storm window. They are separate processes so neither's GIL delays the other.
"""
import argparse
import base64
import json
import os
import socket
import ssl
import sys
import threading
import time


def connect(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the bench's throwaway self-signed certificate
    sock = socket.create_connection(("127.0.0.1", port), timeout=600)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(sock, server_hostname="localhost")


class Reader:
    """Reads whole HTTP/1.1 responses (Content-Length or chunked) from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the server")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                self._take(size + 2)
        else:
            self._take(int(headers.get(b"content-length", b"0")))
        return status


def probe(args):
    sock = connect(args.port)
    reader = Reader(sock)
    request = f"GET /api/version HTTP/1.1\r\nHost: localhost\r\n{args.header}\r\n\r\n".encode()
    sock.sendall(request)
    first = reader.response()
    if first != 200:
        sys.exit(f"probe: the first request got {first}")
    print("ready", file=sys.stderr, flush=True)
    samples = []
    statuses = {}
    while not os.path.exists(args.stop_file):
        sent = time.monotonic()
        sock.sendall(request)
        status = reader.response()
        samples.append((sent, time.monotonic() - sent))
        statuses[status] = statuses.get(status, 0) + 1
    sock.close()
    json.dump({"samples": samples, "statuses": statuses}, sys.stdout)


def storm(args):
    with open(args.users_json) as f:
        users = json.load(f)
    socks = [connect(args.port) for _ in users]  # every handshake before the storm starts
    barrier = threading.Barrier(len(users))
    results = [None] * len(users)

    def login(i):
        user, password = users[i]
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = f"GET /api/version HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {token}\r\n\r\n".encode()
        barrier.wait()
        sent = time.monotonic()
        try:
            socks[i].sendall(request)
            status = Reader(socks[i]).response()
        except Exception as e:  # reported as a failed login
            status = repr(e)
        results[i] = {"user": user, "status": status, "sent": sent, "done": time.monotonic()}

    threads = [threading.Thread(target=login, args=(i,)) for i in range(len(users))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in socks:
        s.close()
    json.dump({"start": min(r["sent"] for r in results), "end": max(r["done"] for r in results),
               "logins": results}, sys.stdout)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--header", required=True)
    p.add_argument("--stop-file", required=True)
    s = sub.add_parser("storm")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--users-json", required=True)
    args = parser.parse_args()
    probe(args) if args.mode == "probe" else storm(args)


if __name__ == "__main__":
    main()
