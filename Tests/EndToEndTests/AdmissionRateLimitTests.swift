import Dispatch
import FakeOllama
import Synchronization
import Testing
import Tollgate
import TollgateIO

/// The per-IP rate limit through the running proxy: nginx's limit_req arithmetic, 429s with Retry-After and
/// RateLimit headers in each family's shape, before authentication, shared across connections and loops, and the
/// client identity behind trusted proxies.
///
/// Most tests use a rate so low (0.001 r/s) that no request's worth refills while they run: the counts are exact.
@Suite struct AdmissionRateLimitTests {
    static func settings(rate: Double = 0.001, burst: Int) -> RateLimitSettings {
        var s = RateLimitSettings()
        s.ratePerSecond = rate
        s.burst = burst
        return s
    }

    @Test func twentyFiveBackToBackGive21PassesAnd4Rejections() throws {
        try withProxyAndFake(configure: { $0.rateLimit = Self.settings(burst: 20) }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            // 21 then one request of each family; all 25 in one write, pipelined on one keep-alive connection.
            let version = Req.get("/api/version")
            // (A refused request with a body ends the connection, so the POST comes last.)
            let rejectedRequests = [Req.get("/api/tags"), Req.get("/v1/models"), Req.get("/api/version"),
                                    Req.post("/v1/messages", #"{"model":"mistral:7b","max_tokens":8,"messages":[]}"#)]
            try client.send(String(repeating: version, count: 21) + rejectedRequests.joined())
            var responses: [Response] = []
            for _ in 0..<25 { responses.append(try client.readResponse()) }
            #expect(responses.prefix(21).allSatisfy { $0.status == 200 })
            #expect(responses.prefix(21).allSatisfy { $0.head.header("RateLimit") == nil })

            let rejected = Array(responses.suffix(4))
            expectError(rejected[0], status: 429, family: .ollama)
            expectError(rejected[1], status: 429, family: .openAI, openAICode: "rate_limit_exceeded")
            expectError(rejected[2], status: 429, family: .ollama)
            expectError(rejected[3], status: 429, family: .anthropic, anthropicType: "rate_limit_error")
            for response in rejected {
                let seconds = try #require(retryAfterSeconds(response), "Retry-After: \(response.head.header("Retry-After") ?? "none")")
                #expect(seconds >= 1)
                let policy = try #require(response.head.header("RateLimit-Policy"))
                #expect(policy.hasPrefix(#""default";q=20;w="#), "RateLimit-Policy: \(policy)")
                #expect(response.head.header("RateLimit") == #""default";r=0;t=\#(seconds)"#)
            }
            // Rejected requests never reached Ollama.
            #expect(fake.requests.count == 21)
            #expect(fake.requests.allSatisfy { $0.target == "/api/version" })
        }
    }

    /// nginx's own example, 10 r/s burst 20: refills while the requests are sent may let one or two more through,
    /// never fewer than 21, and never more than the elapsed time allows.
    @Test func defaultRateBurstOf25() throws {
        try withProxyAndFake(configure: { $0.rateLimit = Self.settings(rate: 10, burst: 20) }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            let start = Syscall.monotonicNanos()
            var passed = 0
            for _ in 0..<25 {
                let status = try client.exchange(Req.get("/api/version")).status
                #expect(status == 200 || status == 429)
                if status == 200 { passed += 1 }
            }
            let elapsed = Double(Syscall.monotonicNanos() - start) / 1e9
            #expect(passed >= 21)
            #expect(passed <= 21 + Int(elapsed * 10) + 1, "passed \(passed) in \(elapsed) s")
        }
    }

    @Test func itRunsBeforeAuthentication() throws {
        let users = try TestUsers.parse("alice:\(try TestUsers.bcrypt("right"))\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.authSettings = Authenticator.Settings(workers: 2, failureLimit: 0)
            config.rateLimit = Self.settings(burst: 4)
        }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            var statuses: [Int] = []
            for i in 0..<10 {
                let response = try client.exchange(Req.get("/api/tags", Credential.basic("alice", "guess\(i)")))
                statuses.append(response.status)
                if response.status == 429 {
                    #expect(response.head.header("RateLimit-Policy") != nil)
                    #expect(response.head.header("WWW-Authenticate") == nil)
                }
            }
            #expect(statuses == Array(repeating: 401, count: 5) + Array(repeating: 429, count: 5))
            // Only the five admitted guesses cost a password check; even the right password is now refused unchecked.
            #expect(try client.exchange(Req.get("/api/tags", Credential.basic("alice", "right"))).status == 429)
            let stats = try authStats(proxy)
            #expect(stats.hashesComputed == 5)
            #expect(stats.denied == 5)
            #expect(stats.allowed == 0)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func oneBucketAcrossConnectionsAndWorkers() throws {
        try withProxyAndFake(configure: { config in
            config.workers = 2
            config.rateLimit = Self.settings(burst: 20)
        }) { proxy, fake in
            // 25 connections (SO_REUSEPORT spreads them over both loops), handshakes first, then all at once.
            let clients = try (0..<25).map { _ in try proxy.tls() }
            defer { clients.forEach { $0.close() } }
            let statuses = Mutex<[Int]>([])
            let boxed = UncheckedClients(clients)
            DispatchQueue.concurrentPerform(iterations: clients.count) { i in
                let status = (try? boxed.clients[i].exchange(Req.get("/api/version")).status) ?? -1
                statuses.withLock { $0.append(status) }
            }
            let all = statuses.withLock { $0 }
            #expect(all.filter { $0 == 200 }.count == 21, "\(all)")
            #expect(all.filter { $0 == 429 }.count == 4, "\(all)")
            #expect(fake.requests.count == 21)
            // And a 26th on yet another connection is still over the limit.
            #expect(try proxy.fetch(Req.get("/api/version")).status == 429)
        }
    }

    @Test func forwardedForIsBelievedFromATrustedPeer() throws {
        try withProxyAndFake(configure: { config in
            config.rateLimit = Self.settings(burst: 1)
            config.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
        }) { proxy, _ in
            func status(_ forwarded: String?) throws -> Int {
                try proxy.fetch(Req.get("/api/version", forwarded.map { "X-Forwarded-For: \($0)\r\n" } ?? "")).status
            }
            // Burst 1: two passes per client, then 429.
            let first = try (0..<3).map { _ in try status("203.0.113.7") }
            #expect(first == [200, 200, 429])
            // Another forwarded client has its own bucket; so has the proxy itself.
            let other = try (0..<3).map { _ in try status("198.51.100.9") }
            #expect(other == [200, 200, 429])
            let direct = try (0..<3).map { _ in try status(nil) }
            #expect(direct == [200, 200, 429])
            // A client cannot escape by prepending its own entry: the right-most untrusted address counts.
            let spoofed = try [status("1.2.3.4, 203.0.113.7"), status("5.6.7.8, 203.0.113.7, 127.0.0.1")]
            #expect(spoofed == [429, 429])
        }
    }

    @Test func forwardedForIsIgnoredFromAnUntrustedPeer() throws {
        try withProxyAndFake(configure: { config in
            config.rateLimit = Self.settings(burst: 1)
            config.trustedProxies = [CIDR(parsing: "10.9.9.0/24")!]
        }) { proxy, _ in
            func status(_ forwarded: String) throws -> Int {
                try proxy.fetch(Req.get("/api/version", "X-Forwarded-For: \(forwarded)\r\n")).status
            }
            // Every request is 127.0.0.1's, whatever it claims.
            let all = try [status("203.0.113.7"), status("198.51.100.9"), status("192.0.2.1")]
            #expect(all == [200, 200, 429])
        }
    }
}
