import FakeOllama
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

/// The per-IP rate limit shared through a real redis-server: two in-process Tollgates count one client together,
/// and while Redis is down (the process killed) each applies `redis-fallback`, recovering by itself once Redis is
/// back on the same port. Rates are so low (0.001 r/s) that nothing refills while a test runs: counts are exact.
@Suite("Shared limits: per-IP rate through Redis", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedRateLimitTests {
    static func configure(_ config: inout ServerConfig, redis: RedisServerProcess, burst: Int, fleet: Int = 1,
                          fallback: SharedLimitsSettings.Fallback = .local) {
        var rate = RateLimitSettings()
        rate.ratePerSecond = 0.001
        rate.burst = burst
        config.rateLimit = rate
        config.sharedLimits = redis.sharedLimits(fleet: fleet, fallback: fallback)
    }

    /// Statuses of `count` GET /api/version requests on one keep-alive connection.
    static func statuses(_ proxy: Proxy, _ count: Int, path: String = "/api/version") throws -> [Int] {
        let client = try proxy.plain()
        defer { client.close() }
        return try (0..<count).map { _ in try client.exchange(Req.get(path)).status }
    }

    @Test func twoInstancesAdmitExactlyTheNginxSequence() throws {
        let redis = try RedisServerProcess()
        try withTwoProxies(configure: { Self.configure(&$0, redis: redis, burst: 20) }) { a, b, fake in
            let ca = try a.plain(), cb = try b.plain()
            defer { ca.close(); cb.close() }
            var responses: [Response] = []
            for i in 0..<25 { responses.append(try (i % 2 == 0 ? ca : cb).exchange(Req.get("/api/version"))) }
            #expect(responses.map(\.status) == Array(repeating: 200, count: 21) + Array(repeating: 429, count: 4))
            #expect(fake.requests.count == 21)
            for response in responses.suffix(4) {
                expectError(response, status: 429, family: .ollama)
                let seconds = try #require(retryAfterSeconds(response))
                #expect(seconds >= 1)
                #expect(response.head.header("RateLimit-Policy")?.hasPrefix(#""default";q=20;w="#) == true)
                #expect(response.head.header("RateLimit") == #""default";r=0;t=\#(seconds)"#)
            }
            let status = try #require(a.server.sharedStatus)
            #expect(status.isUp)
            #expect(!status.isInFallback(.rate))
            #expect(status.callCount >= 1)
            #expect(status.errorCount == 0)
        }
    }

    @Test func localFallbackWhileRedisIsDownThenRecoveryOnItsOwn() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: {
            Self.configure(&$0, redis: redis, burst: 4, fleet: 2)
            $0.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, _ in
            #expect(try Self.statuses(proxy, 7) == [200, 200, 200, 200, 200, 429, 429])

            let status = try redis.kill(seenBy: proxy)
            // burst 4 over a fleet of 2: each instance allows ceil(4/2) = 2 above the rate, alone.
            #expect(try Self.statuses(proxy, 5) == [200, 200, 200, 429, 429])
            #expect(status.isInFallback(.rate))
            let scrape = try Self.metrics(proxy)
            #expect(scrape.contains("tollgate_redis_up 0\n"))
            #expect(scrape.contains("tollgate_redis_fallback{limiter=\"rate\"} 1\n"))

            try redis.start()
            // No request needed: the reconnect itself ends the fallback.
            #expect(eventually { status.isUp && !status.isInFallback(.rate) }, "the fallback did not end by itself")
            // Redis restarted empty: a fresh fleet-wide bucket, decided by Redis again.
            #expect(try Self.statuses(proxy, 7) == [200, 200, 200, 200, 200, 429, 429])
            let after = try Self.metrics(proxy)
            #expect(after.contains("tollgate_redis_up 1\n"))
            #expect(after.contains("tollgate_redis_fallback{limiter=\"rate\"} 0\n"))
            #expect(after.contains("tollgate_redis_calls_total "))
            #expect(after.contains("tollgate_redis_errors_total "))
        }
    }

    @Test func openFallbackAdmitsEverything() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: { Self.configure(&$0, redis: redis, burst: 1, fallback: .open) }) { proxy, _ in
            #expect(try Self.statuses(proxy, 3) == [200, 200, 429])
            let status = try redis.kill(seenBy: proxy)
            #expect(try Self.statuses(proxy, 10) == Array(repeating: 200, count: 10))
            #expect(status.isInFallback(.rate))
        }
    }

    @Test func closedFallbackRefusesWith503ButHealthStillAnswers() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: { Self.configure(&$0, redis: redis, burst: 5, fallback: .closed) }) { proxy, fake in
            #expect(try Self.statuses(proxy, 1) == [200])
            try redis.kill(seenBy: proxy)
            let before = fake.requests.count
            let client = try proxy.plain()
            defer { client.close() }
            let ollama = try client.exchange(Req.get("/api/tags"))
            expectError(ollama, status: 503, family: .ollama)
            #expect(ollama.head.header("Retry-After") == "1")
            #expect(ollama.text.contains("shared limits unavailable"))
            let openAI = try client.exchange(Req.get("/v1/models"))
            expectError(openAI, status: 503, family: .openAI)
            #expect(openAI.head.header("Retry-After") == "1")
            #expect(fake.requests.count == before)
            // Liveness never depends on Redis.
            #expect(try client.exchange(Req.get("/healthz")).status == 200)
        }
    }

    @Test func dryRunAndExemptionsStayLocalDecisions() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: {
            Self.configure(&$0, redis: redis, burst: 0)
            $0.rateLimit?.dryRun = true
        }) { proxy, _ in
            let statuses = try Self.statuses(proxy, 4)
            #expect(statuses == [200, 200, 200, 200])
        }
        try withProxyAndFake(configure: {
            Self.configure(&$0, redis: redis, burst: 0)
            $0.rateLimit?.exempt = [CIDR(parsing: "127.0.0.0/8")!]
        }) { proxy, _ in
            let statuses = try Self.statuses(proxy, 4)
            #expect(statuses == [200, 200, 200, 200])
            #expect(proxy.server.sharedStatus?.callCount == 0)
        }
    }

    @Test func theAccessLogSaysWhoDecided() throws {
        let redis = try RedisServerProcess()
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        try withProxyAndFake(configure: {
            Self.configure(&$0, redis: redis, burst: 1, fleet: 1)
            $0.accessLog = .json
            $0.accessLogPath = log
        }) { proxy, _ in
            // Redis admits two; the second leaves nothing, and its reply says until when, so the third and fourth are
            // refused from the "denied until" cache without asking.
            #expect(try Self.statuses(proxy, 4) == [200, 200, 429, 429])
            try redis.kill(seenBy: proxy)
            #expect(try Self.statuses(proxy, 1) == [200])
            let lines = OpsFiles.waitForLines(log, count: 5)
            let outcomes = accessLogObjects(lines).map { $0?["rate_limit"] as? String }
            #expect(outcomes == ["pass:redis", "pass:redis", "rejected:cache", "rejected:cache", "pass:local"], "\(lines)")
        }
    }

    @Test func aClientGoneWhileRedisDecidesIsForgottenWhenTheAnswerComes() throws {
        let redis = try RedisServerProcess()
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        try withProxyAndFake(configure: {
            Self.configure(&$0, redis: redis, burst: 5)
            $0.sharedLimits?.redis.commandTimeoutMillis = 60_000
            $0.accessLog = .json
            $0.accessLogPath = log
        }) { proxy, fake in
            #expect(try Self.statuses(proxy, 1) == [200])
            // Scripts may write: Redis holds them until unpaused, so the next decision waits.
            #expect(try redis.command("CLIENT", "PAUSE", "60000", "WRITE") == "+OK")
            let gone = try proxy.plain()
            try gone.send(Req.get("/api/version"))
            gone.close()
            let lines = OpsFiles.waitForLines(log, count: 2)
            #expect(accessLogObjects(lines).last??["status"] as? Int == 499, "\(lines)")
            #expect(try redis.command("CLIENT", "UNPAUSE") == "+OK")
            // The late answer finds no exchange; the connection's successor is served as usual.
            #expect(try Self.statuses(proxy, 1) == [200])
            #expect(fake.requests.count == 2)
            let after = accessLogObjects(OpsFiles.waitForLines(log, count: 3))
            #expect(after.last??["rate_limit"] as? String == "pass:redis")
        }
    }

    @Test func bytesArrivingWhileRedisDecidesAreKeptBehindTheHead() throws {
        let redis = try RedisServerProcess()
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        let alice = Credential.basic("alice", "pw-a")
        try withProxyAndFake(configure: {
            Self.configure(&$0, redis: redis, burst: 5)
            $0.sharedLimits?.redis.commandTimeoutMillis = 60_000
            // The password is read from the head after the decision: overwritten head bytes would be a 401.
            $0.users = users
            $0.authSettings = Authenticator.Settings(workers: 1)
        }) { proxy, fake in
            // The decision waits (scripts may write; Redis holds them); meanwhile a pipelined request arrives in two
            // pieces and is read behind the waiting head (a GET alone in the buffer), which must stay intact.
            #expect(try redis.command("CLIENT", "PAUSE", "60000", "WRITE") == "+OK")
            let client = try proxy.plain()
            defer { client.close() }
            try client.send(Req.get("/api/version", alice))
            let body = #"{"model":"mistral:7b","verbose":false}"#
            let request = Array(Req.post("/api/show", body, alice).utf8)
            try client.send(Array(request.prefix(40)))
            try client.send(Array(request.dropFirst(40)))
            #expect(try redis.command("CLIENT", "UNPAUSE") == "+OK")
            let first = try client.readResponse()
            let second = try client.readResponse()
            #expect([first.status, second.status] == [200, 200])
            let seen = fake.requests
            #expect(seen.map(\.target) == ["/api/version", "/api/show"])
            #expect(seen.last.map { String(decoding: $0.body, as: UTF8.self) } == body)
        }
    }

    static func metrics(_ proxy: Proxy) throws -> String {
        let port = try #require(proxy.server.metricsAddresses.first?.port)
        let client = HTTPClient(try PlainStream(port: port))
        defer { client.close() }
        return try client.exchange(Req.get("/metrics")).text
    }
}
