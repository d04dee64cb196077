import FakeOllama
import Foundation
import Testing
import Tollgate

/// The last request-path changes attacked end to end: an upstream's Strict-Transport-Security giving way to
/// Tollgate's own (and nothing else going with it), the access log's client behind a trusted proxy against what the
/// rate limit and the upstream's X-Forwarded-For see, and request bodies arriving intact after the exchange started
/// holding the read buffer in a local.
@Suite struct LastAttackEndToEndTests {
    static let ours = "max-age=31536000; includeSubDomains"

    /// Near misses of the HSTS name (25 bytes that are not it, the name as a prefix or inside another, `_` for `-`):
    /// each must reach the client as the upstream sent it.
    static let nearMisses = [
        "Strict-Transport-Securitx: keep1", "Xtrict-Transport-Security: keep2", "Strict_Transport-Security: keep3",
        "Strict-Transport-Security-Report: keep4", "X-Strict-Transport-Security: keep5",
        "Content-Security-Policy-X: keep6", "Strict-Transport-Securit: keep7", "Strict-Transport-Security1: keep8",
        "Strict-Transport-Secur1ty: keep9", "STRICT-TRANSPORT-SECURITZ: keep10",
    ]

    /// The upstream's head: three HSTS lines in different cases (one empty), the near misses, a two-byte body.
    static var upstreamReply: [UInt8] {
        bytes("HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1; preload\r\n"
              + nearMisses.joined(separator: "\r\n") + "\r\n"
              + "sTrIcT-tRaNsPoRt-SeCuRiTy: max-age=2\r\nSTRICT-TRANSPORT-SECURITY:\r\n"
              + "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
    }

    /// One request through a proxy in front of a one-shot upstream that answers `reply`; the response as the
    /// client read it.
    static func throughRawUpstream(reply: [UInt8], hsts: String?, tls: Bool, request: String = Req.get("/api/tags"))
        throws -> Response {
        let raw = try RawUpstream(reply: reply)
        var response: Response?
        try withProxyAndFake(configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(raw.port)")!
            $0.hsts = hsts
        }) { proxy, _ in
            let client = tls ? try proxy.tls() : try proxy.plain()
            defer { client.close() }
            response = try client.exchange(request)
        }
        return try #require(response)
    }

    static func names(_ head: ResponseHead) -> [String] { head.headers.map { $0.name.lowercased() } }

    @Test func overTLSOnlyTollgatesHSTSLineIsLeftAndEveryNearMissPasses() throws {
        let response = try Self.throughRawUpstream(reply: Self.upstreamReply, hsts: Self.ours, tls: true)
        #expect(response.status == 200)
        #expect(response.text == "ok")
        let hsts = response.head.headers.filter { $0.name.lowercased() == "strict-transport-security" }
        #expect(hsts.map(\.value) == [Self.ours], "\(String(decoding: response.head.raw, as: UTF8.self))")
        let raw = String(decoding: response.head.raw, as: UTF8.self)
        for line in Self.nearMisses { #expect(raw.contains("\r\n" + line + "\r\n"), "dropped: \(line)") }
    }

    @Test func withoutALineOfItsOwnTheUpstreamsHSTSPassesUnchanged() throws {
        // Plain listener (never HSTS of Tollgate's own) and TLS with `hsts off`: every upstream line passes.
        for tls in [false, true] {
            let response = try Self.throughRawUpstream(reply: Self.upstreamReply, hsts: tls ? nil : Self.ours, tls: tls)
            let hsts = response.head.headers.filter { $0.name.lowercased() == "strict-transport-security" }
            #expect(hsts.map(\.value) == ["max-age=1; preload", "max-age=2", ""], "tls \(tls)")
            let raw = String(decoding: response.head.raw, as: UTF8.self)
            for line in Self.nearMisses { #expect(raw.contains("\r\n" + line + "\r\n"), "dropped: \(line)") }
        }
    }

    @Test func anUpstreamHSTSInAChunkedTrailerSectionNeverReachesATLSClient() throws {
        // The chunked body is relayed byte for byte up to its last-chunk line, then its trailer section goes empty:
        // an upstream's HSTS (or Set-Cookie) there would pass every filter of the head.
        let reply = bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                          + "2\r\nok\r\n0\r\nStrict-Transport-Security: max-age=0\r\nSet-Cookie: a=b\r\n\r\n")
        let response = try Self.throughRawUpstream(reply: reply, hsts: Self.ours, tls: true,
                                                   request: Req.get("/api/version"))
        #expect(response.text == "ok")
        #expect(response.head.headers.filter { $0.name.lowercased() == "strict-transport-security" }.map(\.value)
                == [Self.ours])
        #expect(response.rawBody == bytes("2\r\nok\r\n0\r\n\r\n"), "\(String(decoding: response.rawBody, as: UTF8.self))")
    }

    // MARK: - The access log's client

    /// A proxy trusting 127.0.0.1 (the test client) with a JSON access log; `burst` for its rate limit.
    static func withTrustedProxyLog(burst: Int?, trusted: [String] = ["127.0.0.1/32"],
                                    body: (Proxy, FakeOllamaServer, String) throws -> Void) throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        try withProxyAndFake(configure: { config in
            config.accessLog = .json
            config.accessLogPath = log
            config.trustedProxies = trusted.map { CIDR(parsing: $0)! }
            if let burst {
                var s = RateLimitSettings()
                s.ratePerSecond = 0.001
                s.burst = burst
                config.rateLimit = s
            }
        }) { proxy, fake in try body(proxy, fake, log) }
    }

    /// X-Forwarded-For lines a trusted proxy might send, and the client each names (right-most untrusted entry).
    static let forwarded: [(lines: [String], client: String)] = [
        (["203.0.113.7"], "203.0.113.7"),
        (["1.2.3.4, 203.0.113.7"], "203.0.113.7"),
        (["5.6.7.8, 198.51.100.9, 127.0.0.1"], "198.51.100.9"),
        (["203.0.113.8:8080"], "203.0.113.8"),
        (["2001:DB8:0:0::1"], "2001:db8::1"),
        (["[2001:db8::2]:443"], "2001:db8::2"),
        (["fe80::1, 2001:db8::3, 127.0.0.1"], "2001:db8::3"),
        (["1.1.1.1", "203.0.113.9"], "203.0.113.9"),
        (["garbage, 203.0.113.10"], "203.0.113.10"),
        // Garbage met first (right to left): nobody can tell who wrote it, so the peer.
        (["203.0.113.11, garbage"], "127.0.0.1"),
        // Every entry trusted: the left-most, here the peer itself.
        (["127.0.0.1"], "127.0.0.1"),
        ([], "127.0.0.1"),
        ([" , ,203.0.113.12 , "], "203.0.113.12"),
        // An IPv4-mapped IPv6 entry is the IPv4 client; leading zeros are garbage (the peer).
        (["::ffff:203.0.113.13"], "203.0.113.13"),
        (["203.000.113.014"], "127.0.0.1"),
    ]

    @Test func behindATrustedProxyTheLogTheUpstreamAndTheRateLimitNameTheSameClient() throws {
        try Self.withTrustedProxyLog(burst: nil) { proxy, fake, log in
            let client = try proxy.tls()
            defer { client.close() }
            for (lines, _) in Self.forwarded {
                let extra = lines.map { "X-Forwarded-For: \($0)\r\n" }.joined()
                #expect(try client.exchange(Req.get("/api/version", extra)).status == 200)
            }
            let objects = accessLogObjects(OpsFiles.waitForLines(log, count: Self.forwarded.count))
            let logged = objects.map { $0?["client"] as? String }
            let upstream = fake.requests.map { $0.header("X-Forwarded-For") }
            #expect(logged == Self.forwarded.map(\.client))
            #expect(upstream == Self.forwarded.map(\.client))
            // Tollgate sends exactly one X-Forwarded-For, its own, whatever the client sent.
            #expect(fake.requests.allSatisfy { r in r.headers.filter { $0.name.lowercased() == "x-forwarded-for" }.count == 1 })
        }
    }

    @Test func theRateLimitCountsTheLoggedClient() throws {
        // Burst 1: two passes, then 429, per client; the spellings of one address share a bucket and a log name.
        try Self.withTrustedProxyLog(burst: 1) { proxy, _, log in
            func status(_ forwarded: String) throws -> Int {
                try proxy.fetch(Req.get("/api/version", "X-Forwarded-For: \(forwarded)\r\n")).status
            }
            let v6 = try [status("2001:db8::1"), status("[2001:DB8:0::1]:80"), status("9.9.9.9, 2001:0db8::0001")]
            let v4 = try [status("203.0.113.7"), status("1.2.3.4, 203.0.113.7:1"), status("203.0.113.7, 127.0.0.1")]
            #expect(v6 == [200, 200, 429])
            #expect(v4 == [200, 200, 429])
            let objects = accessLogObjects(OpsFiles.waitForLines(log, count: 6))
            #expect(objects.map { $0?["client"] as? String } == Array(repeating: "2001:db8::1", count: 3)
                    + Array(repeating: "203.0.113.7", count: 3))
            #expect(objects.map { $0?["status"] as? Int } == [200, 200, 429, 200, 200, 429])
        }
    }

    @Test func withoutATrustedPeerAClientsForwardedForNeverReachesTheLog() throws {
        // No trusted proxies, and trusted proxies that do not include the peer: the peer, in the log and upstream.
        for trusted in [[], ["10.9.9.0/24", "::1/128"]] {
            try Self.withTrustedProxyLog(burst: nil, trusted: trusted) { proxy, fake, log in
                let client = try proxy.tls()
                defer { client.close() }
                for (lines, _) in Self.forwarded {
                    let extra = lines.map { "X-Forwarded-For: \($0)\r\n" }.joined()
                    #expect(try client.exchange(Req.get("/api/version", extra)).status == 200)
                }
                let lines = OpsFiles.waitForLines(log, count: Self.forwarded.count)
                #expect(accessLogObjects(lines).map { $0?["client"] as? String }
                        == Array(repeating: "127.0.0.1", count: Self.forwarded.count), "trusted \(trusted)")
                #expect(fake.requests.map { $0.header("X-Forwarded-For") }
                        == Array(repeating: "127.0.0.1", count: Self.forwarded.count), "trusted \(trusted)")
                for line in lines { #expect(!line.contains("203.0.113") && !line.contains("2001:db8"), "\(line)") }
            }
        }
    }

    @Test func aRefusedTargetBehindATrustedProxyIsLoggedWithTheClientItNames() throws {
        // A target refused before the exchange exists (`refuse`) is logged with the client the proxy names, as an
        // exchange is; without a forwarded client, with the peer.
        try Self.withTrustedProxyLog(burst: nil) { proxy, _, log in
            let client = try proxy.tls()
            defer { client.close() }
            #expect(try client.exchange(Req.get("/api/%2Fversion", "X-Forwarded-For: 203.0.113.7\r\n")).status == 400)
            let second = try proxy.tls()
            defer { second.close() }
            #expect(try second.exchange(Req.get("/api/%2Fversion")).status == 400)
            let objects = accessLogObjects(OpsFiles.waitForLines(log, count: 2))
            #expect(objects.map { $0?["client"] as? String } == ["203.0.113.7", "127.0.0.1"])
        }
    }

    // MARK: - Bodies after the exchange holds the buffer in a local

    static func chunked(_ body: [UInt8], sizes: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        var rest = body[...]
        for size in sizes where !rest.isEmpty {
            let part = rest.prefix(size)
            out += bytes(String(part.count, radix: 16) + "\r\n") + part + bytes("\r\n")
            rest = rest.dropFirst(part.count)
        }
        if !rest.isEmpty { out += bytes(String(rest.count, radix: 16) + "\r\n") + rest + bytes("\r\n") }
        return out + bytes("0\r\n\r\n")
    }

    @Test func pipelinedBodiesInOneWriteArriveByteExact() throws {
        // Every byte value in the bodies, a Content-Length body, a chunked one, an empty one and a GET, all sent in
        // one write on one connection; each body reaches the upstream as it was, in order, with its framing.
        let a = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let b = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        let c = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")  // a request's bytes as a body: never a request
        var wire: [UInt8] = []
        wire += bytes("POST /api/blobs/sha256:a HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(a.count)\r\n\r\n") + a
        wire += bytes("POST /api/blobs/sha256:b HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
            + Self.chunked(b, sizes: [1, 4096, 30_000])
        wire += bytes("POST /api/blobs/sha256:c HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(c.count)\r\n\r\n") + c
        wire += bytes("POST /api/blobs/sha256:d HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        wire += bytes("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try withProxyAndFake { proxy, fake in
            for tls in [true, false] {
                let before = fake.requests.count
                let client = tls ? try proxy.tls() : try proxy.plain()
                defer { client.close() }
                try client.send(wire)
                let statuses = try (0..<5).map { _ in try client.readResponse().status }
                #expect(statuses == [201, 201, 201, 201, 200])
                let seen = Array(fake.requests.dropFirst(before))
                #expect(seen.map(\.target) == ["/api/blobs/sha256:a", "/api/blobs/sha256:b", "/api/blobs/sha256:c",
                                               "/api/blobs/sha256:d", "/api/version"])
                #expect(seen.map(\.body) == [a, b, c, [], []])
                #expect(seen.map { $0.header("Content-Length") } == ["\(a.count)", nil, "\(c.count)", "0", nil])
                #expect(seen[1].header("Transfer-Encoding") == "chunked")
            }
        }
    }

    @Test func aChunkedBodyIsForwardedWithTheSameChunksWhenRelayed() throws {
        // Byte-exact on the wire: a streamed (blob) chunked body keeps its chunk sizes at the upstream.
        let body = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let framed = Self.chunked(body, sizes: [1, 2, 3, 4090])
        let raw = try RawUpstream()
        try withProxyAndFake(configure: { $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(raw.port)")! }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(bytes("POST /api/blobs/sha256:abc HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
                            + framed)
            #expect(try client.readResponse().status == 200)
            #expect(raw.received().afterHead == framed)
        }
    }

    @Test func expectContinueThenAPipelinedRequestAfterTheBody() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let body = (0..<300).map { UInt8(truncatingIfNeeded: 255 - $0) }
            try client.send("POST /api/blobs/sha256:e HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                            + "Content-Length: \(body.count)\r\n\r\n")
            #expect(try client.readHead().status == 100)
            // The body and the next request in one write.
            let json = #"{"model":"mistral:7b"}"#
            try client.send(body + bytes("POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                         + "Content-Length: \(json.utf8.count)\r\n\r\n" + json))
            #expect(try client.readResponse().status == 201)
            #expect(try client.readResponse().status == 200)
            #expect(fake.requests.map(\.body) == [body, bytes(json)])
            #expect(fake.requests.allSatisfy { $0.header("Expect") == nil })
        }
    }

    @Test func pipelinedBodiesReadWholeForTheModelArriveIntact() throws {
        // Inference bodies are read whole (the model routes them) by a phase after the exchange started: two
        // generate requests, one chunked, and a GET in one write.
        let first = #"{"model":"mistral:7b","stream":false,"prompt":"\#(String(repeating: "ab\\u00e9", count: 3000))"}"#
        let second = #"{"model":"mistral:7b","stream":false,"prompt":"second"}"#
        var wire = bytes(Req.post("/api/generate", first))
        wire += bytes("POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      + "Transfer-Encoding: chunked\r\n\r\n") + Self.chunked(bytes(second), sizes: [3, 7])
        wire += bytes(Req.get("/api/version"))
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(wire)
            let statuses = try (0..<3).map { _ in try client.readResponse().status }
            #expect(statuses == [200, 200, 200])
            #expect(fake.requests.map(\.target) == ["/api/generate", "/api/generate", "/api/version"])
            #expect(fake.requests.map { String(decoding: $0.body, as: UTF8.self) } == [first, second, ""])
        }
    }
}
