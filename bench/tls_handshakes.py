#!/usr/bin/env python3
"""Opens N TLS connections to 127.0.0.1:PORT one after another and closes each after the handshake, or sends N
requests over one.

    tls_handshakes.py PORT N new|reuse [TLSv1_2|TLSv1_3]
    tls_handshakes.py PORT N keepalive USER:PASSWORD

`reuse` offers the session of the previous connection every time (a client that uses each ticket once), reading
briefly after the handshake so TLS 1.3 tickets arrive; `new` never offers one. Prints "N MODE resumed=R".
`keepalive` sends N `GET /api/version` with Basic credentials over one kept-alive connection; prints "N keepalive
ok=K" (K answered 200).
Standard library only; certificates are not verified (the server's identity is not what is measured).
"""
import base64
import http.client
import socket
import ssl
import sys


def keepalive(port: int, count: int, ctx: ssl.SSLContext, credentials: str) -> int:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    auth = "Basic " + base64.b64encode(credentials.encode()).decode()
    ok = 0
    for _ in range(count):
        conn.request("GET", "/api/version", headers={"Authorization": auth})
        response = conn.getresponse()
        response.read()
        ok += response.status == 200
    conn.close()
    print(f"{count} keepalive ok={ok}")
    return 0


def main() -> int:
    port, count, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if mode == "keepalive":
        return keepalive(port, count, ctx, sys.argv[4])
    version = sys.argv[4] if len(sys.argv) > 4 else "TLSv1_3"
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion[version]
    session, resumed = None, 0
    for _ in range(count):
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        s = ctx.wrap_socket(raw, session=session if mode == "reuse" else None)
        resumed += s.session_reused
        if mode == "reuse":
            s.settimeout(0.2)
            try:
                s.recv(1)
            except (TimeoutError, ssl.SSLError, OSError):
                pass
            session = s.session
        s.close()
    print(f"{count} {mode} resumed={resumed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
