import FakeOllama
import Testing
import Tollgate
import TollgateIO

/// The failed-login throttle through the running proxy, per (client prefix, user) and per prefix with IPv6 grouped
/// by /64; ambiguous credential headers; PROXY protocol headers from peers outside `proxy-protocol-from`.
/// Client addresses are set with PROXY protocol headers from the loopback peer (a trusted range by default).
@Suite struct AuthThrottleTests {
    static let users = "alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n"

    static func withThrottle(limit: Int, body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        try withThrottle(limit: limit, { _ in }, body: body)
    }

    static func withThrottle(limit: Int, _ tweak: @escaping (inout ServerConfig) -> Void,
                             body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse(Self.users)
        try withProxyAndFake(configure: { config in
            config.users = users
            config.proxyProtocol = true
            config.authSettings = Authenticator.Settings(workers: 1, failureLimit: limit, failureWindowSeconds: 600)
            tweak(&config)
        }, body: body)
    }

    /// One request on a new plain connection that first says, in a PROXY header, it comes from `source`.
    static func from(_ proxy: Proxy, _ source: String, _ request: String) throws -> Response {
        let header = source.contains(":") ? "PROXY TCP6 \(source) 2001:db8::1 40000 443\r\n"
            : "PROXY TCP4 \(source) 10.0.0.1 40000 443\r\n"
        let client = try proxy.plain()
        defer { client.close() }
        try client.send(header + request)
        return try client.readResponse()
    }

    static func tags(_ credential: String) -> String { Req.get("/api/tags", credential) }

    @Test func aSlash64NeighboursFailuresThrottleThePrefixForEveryUser() throws {
        try Self.withThrottle(limit: 2) { proxy, _ in
            // Six failures (three times the limit), each for another name from another address of one /64: no
            // user reaches its own limit, the prefix reaches its.
            for i in 1...6 {
                let r = try Self.from(proxy, "2001:db8:5:5::\(i)", Self.tags(Credential.basic("user\(i)", "guess")))
                #expect(r.status == 401)
            }
            let refused = try Self.from(proxy, "2001:db8:5:5:ffff::1", Self.tags(Credential.basic("bob", "pw-b")))
            expectError(refused, status: 429, family: .ollama)
            #expect((retryAfterSeconds(refused) ?? 0) >= 1)
            #expect(refused.text.contains("failed logins"))
            // The next /64 is someone else.
            #expect(try Self.from(proxy, "2001:db8:5:6::1", Self.tags(Credential.basic("bob", "pw-b"))).status == 200)
            // Nothing was hashed for the refused attempt.
            #expect(try authStats(proxy).throttled == 1)
        }
    }

    @Test func aVerifiedCredentialStillWorksAfterOtherUsersFailuresFromTheSameAddress() throws {
        try Self.withThrottle(limit: 2) { proxy, fake in
            let nat = "198.51.100.5"
            #expect(try Self.from(proxy, nat, Self.tags(Credential.basic("bob", "pw-b"))).status == 200)
            for i in 1...6 {
                #expect(try Self.from(proxy, nat, Self.tags(Credential.basic("user\(i)", "guess"))).status == 401)
            }
            // The address is throttled for anything not already verified...
            expectError(try Self.from(proxy, nat, Self.tags(Credential.basic("alice", "pw-a"))), status: 429,
                        family: .ollama)
            // ...but bob's verified credential, in any header style, is not refused for failures it did not cause.
            #expect(try Self.from(proxy, nat, Self.tags(Credential.basic("bob", "pw-b"))).status == 200)
            #expect(try Self.from(proxy, nat, Self.tags(Credential.bearer("bob", "pw-b"))).status == 200)
            #expect(fake.requests.count == 3)
        }
    }

    @Test func thePerUserThrottleDoesNotLockOutAnotherUserFromTheSameAddress() throws {
        try Self.withThrottle(limit: 2) { proxy, _ in
            let nat = "203.0.113.44"
            for _ in 0..<2 {
                #expect(try Self.from(proxy, nat, Self.tags(Credential.basic("alice", "stale"))).status == 401)
            }
            let refused = try Self.from(proxy, nat, Self.tags(Credential.apiKey("alice", "pw-a")))
            expectError(refused, status: 429, family: .ollama)
            #expect(try Self.from(proxy, nat, Self.tags(Credential.basic("bob", "pw-b"))).status == 200)
            #expect(try Self.from(proxy, "203.0.113.45", Self.tags(Credential.basic("alice", "pw-a"))).status == 200)
        }
    }

    @Test(arguments: [
        Credential.basic("alice", "pw-a") + Credential.basic("bob", "pw-b"),
        Credential.basic("alice", "pw-a") + Credential.basic("alice", "pw-a"),
        Credential.apiKey("alice", "pw-a") + Credential.apiKey("bob", "pw-b"),
        Credential.bearer("alice", "pw-a") + Credential.apiKey("bob", "pw-b"),
        Credential.apiKey("bob", "wrong") + Credential.basic("bob", "pw-b"),
    ])
    func ambiguousCredentialsAreRefusedWith400BeforeAnyCheck(_ headers: String) throws {
        try Self.withThrottle(limit: 2) { proxy, fake in
            let ollama = try Self.from(proxy, "192.0.2.9", Self.tags(headers))
            expectError(ollama, status: 400, family: .ollama)
            let openAI = try Self.from(proxy, "192.0.2.9", Req.get("/v1/models", headers))
            expectError(openAI, status: 400, family: .openAI)
            let anthropic = try Self.from(proxy, "192.0.2.9", Req.post("/v1/messages",
                #"{"model":"mistral:7b","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#, headers))
            expectError(anthropic, status: 400, family: .anthropic)
            #expect(fake.requests.isEmpty)
            let stats = try authStats(proxy)
            #expect(stats.hashesComputed == 0 && stats.cacheHits == 0 && stats.denied == 0)
        }
    }

    @Test func authorizationAndAPIKeyWithTheSameCredentialsAreAccepted() throws {
        try Self.withThrottle(limit: 2) { proxy, _ in
            let both = Credential.bearer("alice", "pw-a") + Credential.apiKey("alice", "pw-a")
            let response = try Self.from(proxy, "192.0.2.9", Self.tags(both))
            #expect(response.status == 200)
        }
    }

    @Test func aPROXYHeaderFromAPeerOutsideTheRangesClosesTheConnectionUnread() throws {
        try Self.withThrottle(limit: 2, { config in
            config.proxyProtocolFrom = [CIDR(parsing: "203.0.113.0/24")!]
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, fake in
            for _ in 0..<2 {
                let client = try proxy.plain()
                defer { client.close() }
                try client.send(ProxyHeader.v1("203.0.113.7") + Array(Self.tags(Credential.basic("bob", "pw-b")).utf8))
                #expect(try client.readToEOF().isEmpty, "the proxy answered a peer outside proxy-protocol-from")
            }
            #expect(throws: (any Error).self) { try AdmissionExtraProxyProtocolTests.tls(proxy, ProxyHeader.v1("203.0.113.7")) }
            #expect(fake.requests.isEmpty)
            #expect(try MetricsScrape(proxy)["tollgate_proxy_protocol_refused_total"] == 3)
        }
    }

    @Test func aSilentPeerOutsideTheRangesIsClosedAtAccept() throws {
        try Self.withThrottle(limit: 2, { config in
            config.proxyProtocolFrom = [CIDR(parsing: "203.0.113.0/24")!]
            config.timeouts.requestHead = 3_600
        }) { proxy, _ in
            let client = try proxy.plain()
            defer { client.close() }
            // Nothing sent: the close comes at accept, not at the (hour-long) head timeout.
            #expect(try client.readToEOF().isEmpty)
        }
    }

    @Test func theThrottleNeedsARestartAndProxyProtocolFromIsReloaded() throws {
        try Self.withThrottle(limit: 2) { proxy, _ in
            var changed = proxy.server.config
            changed.authSettings.failureLimit = 50
            changed.proxyProtocolFrom = [CIDR(parsing: "203.0.113.0/24")!]
            let messages = try proxy.server.reload(changed)
            #expect(messages.count == 2, "\(messages)")
            #expect(messages.last?.contains("login-fail-limit") == true && messages.last?.contains("restart") == true,
                    "\(messages)")
            #expect(!(messages.last?.contains("proxy-protocol-from") ?? true), "\(messages)")
            #expect(proxy.server.config.authSettings.failureLimit == 2)
            // The loopback peer is no longer a trusted balancer once the loop has the new ranges.
            let refused = try waitUntil {
                let client = try proxy.plain()
                defer { client.close() }
                try client.send(ProxyHeader.v1("192.0.2.1") + Array(Req.get("/api/version").utf8))
                return try client.readToEOF().isEmpty
            }
            #expect(refused)
        }
    }
}
