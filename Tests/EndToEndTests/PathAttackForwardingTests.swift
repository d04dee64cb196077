import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// The upstream head's per-connection parts (Host, X-Forwarded-For, X-Forwarded-Proto, kept across a connection's
/// requests), the HSTS line made once per configuration, and the request id written as a number, attacked from the
/// client side: several connections of both listeners interleaved on one worker, pipelined requests naming
/// different clients through a trusted proxy, a PROXY protocol source that is itself a trusted proxy, reloads
/// between two requests of one connection, and forwarding headers a client wrote in every spelling.
@Suite struct PathAttackForwardingTests {
    /// The values of `name` (any case) the upstream saw on `request`.
    static func values(_ request: FakeOllamaServer.RecordedRequest, _ name: String) -> [String] {
        request.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    /// Forwarding headers a client writes to pass for someone else, in odd spellings.
    static let spoofs = "x-FORWARDED-for: 6.6.6.6\r\nX-Forwarded-PROTO: https\r\nx-real-ip: 6.6.6.7\r\n"
        + "FORWARDED: for=6.6.6.8\r\nX-Forwarded-Host: evil.example\r\nX-REQUEST-ID: 0123456789abcdef\r\n"
        + "Proxy-Authorization: Basic Zm9vOmJhcg==\r\nPROXY-X: y\r\n"

    /// What the upstream must never see from a client that is not a trusted proxy.
    static func expectNoSpoof(_ request: FakeOllamaServer.RecordedRequest, client: String, scheme: String,
                              host: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(values(request, "X-Forwarded-For") == [client], "\(request.headers)", sourceLocation: sourceLocation)
        #expect(values(request, "X-Forwarded-Proto") == [scheme], "\(request.headers)", sourceLocation: sourceLocation)
        #expect(values(request, "Host") == [host], sourceLocation: sourceLocation)
        for name in ["X-Real-IP", "Forwarded", "X-Forwarded-Host", "Proxy-Authorization", "Proxy-X"] {
            #expect(values(request, name).isEmpty, "\(name) reached the upstream", sourceLocation: sourceLocation)
        }
        #expect(values(request, "X-Request-Id").count == 1, sourceLocation: sourceLocation)
        #expect(values(request, "X-Request-Id") != ["0123456789abcdef"], sourceLocation: sourceLocation)
    }

    @Test func interleavedPlainAndTLSConnectionsEachKeepTheirOwnScheme() throws {
        try withProxyAndFake { proxy, fake in
            let tls = try proxy.tls()
            defer { tls.close() }
            let plain = try proxy.plain()
            defer { plain.close() }
            var schemes: [String] = []
            for round in 0..<4 {
                // Pipelined pairs on each, alternating which connection goes first.
                let order = round % 2 == 0 ? [(tls, "https"), (plain, "http")] : [(plain, "http"), (tls, "https")]
                for (client, scheme) in order {
                    let request = Req.get("/api/version?\(scheme)\(round)", Self.spoofs)
                    try client.send(request + request)
                    #expect(try client.readResponse().status == 200)
                    #expect(try client.readResponse().status == 200)
                    schemes += [scheme, scheme]
                }
            }
            let seen = fake.requests
            #expect(seen.count == schemes.count)
            for (request, scheme) in zip(seen, schemes) {
                #expect(request.target.contains(scheme))
                Self.expectNoSpoof(request, client: "127.0.0.1", scheme: scheme, host: proxy.upstreamHost)
            }
        }
    }

    @Test func pipelinedRequestsThroughATrustedProxyEachNameTheirClient() throws {
        try withProxyAndFake(configure: { $0.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!] }) { proxy, fake in
            for open in [{ try proxy.tls() }, { try proxy.plain() }] {
                let client = try open()
                defer { client.close() }
                let forwarded: [String?] = ["203.0.113.7", nil, "2001:db8::1", "127.0.0.1", nil, "198.51.100.9",
                                            "203.0.113.7"]
                var all = ""
                for (n, name) in forwarded.enumerated() {
                    // Every other one in another spelling of the header name.
                    let field = n % 2 == 0 ? "X-Forwarded-For" : "x-forwarded-FOR"
                    all += Req.get("/api/version?\(n)", name.map { "\(field): \($0)\r\n" } ?? "")
                }
                try client.send(all)
                for _ in forwarded { #expect(try client.readResponse().status == 200) }
            }
            let seen = fake.requests
            let expected = ["203.0.113.7", "127.0.0.1", "2001:db8::1", "127.0.0.1", "127.0.0.1", "198.51.100.9",
                            "203.0.113.7"]
            #expect(seen.map { Self.values($0, "X-Forwarded-For") } == (expected + expected).map { [$0] })
            #expect(seen.map { Self.values($0, "X-Forwarded-Proto") }
                == Array(repeating: ["https"], count: 7) + Array(repeating: ["http"], count: 7))
            #expect(seen.allSatisfy { Self.values($0, "Host") == [proxy.upstreamHost] })
        }
    }

    @Test func aProxyProtocolSourceThatIsATrustedProxyNamesItselfWhenNoClientIsForwarded() throws {
        // The load balancer speaks PROXY protocol for a second proxy (10.9.0.5, trusted) that forwards clients:
        // a request without X-Forwarded-For is that proxy's own, never the TCP peer's (127.0.0.1) nor the client
        // of the request before it. A second connection from an untrusted source, interleaved on the same worker,
        // keeps its own address whatever it claims.
        try withProxyAndFake(configure: {
            $0.proxyProtocol = true
            $0.trustedProxies = [CIDR(parsing: "10.9.0.0/16")!]
        }) { proxy, fake in
            let trusted = HTTPClient(try PrefixedTLSStream(port: proxy.tlsPort, prefix: ProxyHeader.v1("10.9.0.5")))
            defer { trusted.close() }
            let untrusted = try proxy.plain()
            defer { untrusted.close() }
            try untrusted.send(ProxyHeader.v2((192, 0, 2, 7)))
            for claimed in ["203.0.113.1", nil, "203.0.113.2", nil] {
                let header = claimed.map { "X-Forwarded-For: \($0)\r\n" } ?? ""
                #expect(try trusted.exchange(Req.get("/api/version?t", header)).status == 200)
                #expect(try untrusted.exchange(Req.get("/api/version?u", header)).status == 200)
            }
            let seen = fake.requests
            #expect(seen.filter { $0.target.hasSuffix("?t") }.map { Self.values($0, "X-Forwarded-For") }
                == [["203.0.113.1"], ["10.9.0.5"], ["203.0.113.2"], ["10.9.0.5"]])
            #expect(seen.filter { $0.target.hasSuffix("?u") }.map { Self.values($0, "X-Forwarded-For") }
                == Array(repeating: ["192.0.2.7"], count: 4))
            #expect(seen.filter { $0.target.hasSuffix("?t") }.allSatisfy { Self.values($0, "X-Forwarded-Proto") == ["https"] })
            #expect(seen.filter { $0.target.hasSuffix("?u") }.allSatisfy { Self.values($0, "X-Forwarded-Proto") == ["http"] })
        }
    }

    @Test func trustedProxiesReloadedBetweenTwoRequestsOfOneConnection() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let claim = "X-Forwarded-For: 203.0.113.9\r\n"
            #expect(try client.exchange(Req.get("/api/version?1", claim)).status == 200)
            var changed = proxy.server.config
            changed.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
            _ = try proxy.server.reload(changed)
            // Bounded wait for the loop to take the new configuration; each probe is a request on this connection.
            #expect(try waitUntil {
                try client.exchange(Req.get("/api/version?probe", claim)).status == 200
                    && fake.requests.last.map { Self.values($0, "X-Forwarded-For") } == ["203.0.113.9"]
            })
            #expect(try client.exchange(Req.get("/api/version?2")).status == 200)
            changed.trustedProxies = []
            _ = try proxy.server.reload(changed)
            #expect(try waitUntil {
                try client.exchange(Req.get("/api/version?probe", claim)).status == 200
                    && fake.requests.last.map { Self.values($0, "X-Forwarded-For") } == ["127.0.0.1"]
            })
            let seen = fake.requests.filter { !$0.target.hasSuffix("probe") }
            #expect(seen.map { Self.values($0, "X-Forwarded-For") } == [["127.0.0.1"], ["127.0.0.1"]])
        }
    }

    @Test func hstsFollowsReloadsOnAnOpenConnectionAndNeverReachesPlain() throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        let alice = Credential.basic("alice", "pw-a")
        try withProxyAndFake(configure: { $0.users = users; $0.hsts = "max-age=1" }) { proxy, fake in
            let tls = try proxy.tls()
            defer { tls.close() }
            let plain = try proxy.plain()
            defer { plain.close() }
            // Proxied (a plain and a streamed body), Tollgate's own answers (401, 404, health), an upstream error.
            let requests = [Req.get("/api/version", alice), Req.generate(alice), Req.get("/api/tags"),
                            Req.get("/api/nope", alice), Req.get("/healthz")]
            func check(_ expected: String?, _ sourceLocation: SourceLocation = #_sourceLocation) throws {
                for request in requests {
                    let secure = try tls.exchange(request)
                    #expect(secure.head.header("Strict-Transport-Security") == expected,
                            "\(secure.status) \(request.prefix(24))", sourceLocation: sourceLocation)
                    #expect(secure.head.count("Strict-Transport-Security") == (expected == nil ? 0 : 1),
                            sourceLocation: sourceLocation)
                    let open = try plain.exchange(request)
                    #expect(open.status != 0)
                    #expect(open.head.header("Strict-Transport-Security") == nil, sourceLocation: sourceLocation)
                }
            }
            try check("max-age=1")
            var changed = proxy.server.config
            for next in ["max-age=2; includeSubDomains", nil, "max-age=3"] {
                changed.hsts = next
                _ = try proxy.server.reload(changed)
                #expect(try waitUntil {
                    try tls.exchange(Req.get("/api/version", alice)).head.header("Strict-Transport-Security") == next
                })
                try check(next)
            }
            #expect(!fake.requests.isEmpty)
        }
    }

    @Test func oneRequestIDInTheResponseUpstreamAccessLogAndLedger() throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        let alice = Credential.basic("alice", "pw-a")
        let database = StateDatabase.path(in: dir.path + "/state")
        var responseIDs: [String] = []
        try withProxyAndFake(configure: {
            $0.users = users
            $0.accessLog = .json
            $0.accessLogPath = log
            $0.databasePath = database
        }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            // Pipelined, each with a client-chosen id in some spelling: proxied, a streamed generation, a refusal.
            let sent = Req.get("/api/version", alice + "X-Request-Id: aaaaaaaaaaaaaaaa\r\n")
                + Req.generate(alice + "x-request-ID: bbbbbbbbbbbbbbbb\r\n")
                + Req.get("/api/tags", "X-REQUEST-ID: cccccccccccccccc\r\n")
                + Req.get("/api/tags", alice)
            try client.send(sent)
            for _ in 0..<4 {
                let response = try client.readResponse()
                #expect(response.head.count("X-Request-Id") == 1)
                responseIDs.append(response.head.header("X-Request-Id") ?? "")
            }
            let upstreamIDs = fake.requests.map { Self.values($0, "X-Request-Id") }
            #expect(upstreamIDs == [[responseIDs[0]], [responseIDs[1]], [responseIDs[3]]])
            let logged = accessLogObjects(OpsFiles.waitForLines(log, count: 4)).map { $0?["request_id"] as? String }
            #expect(logged == responseIDs.map { $0 })
            try #require(proxy.server.ledger).sync()
        }
        #expect(responseIDs.allSatisfy { $0.utf8.count == 16 && $0.allSatisfy(\.isHexDigit) && $0 == $0.lowercased() })
        #expect(Set(responseIDs).count == 4)
        #expect(!responseIDs.contains { ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"].contains($0) })
        let rows = try UsageStore(reading: database).rows()
        #expect(rows.map(\.requestID) == [responseIDs[0], responseIDs[1], responseIDs[3]])
    }
}
