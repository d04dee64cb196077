import FakeOllama
import Testing
import Tollgate
import TollgateIO

/// The failed-login throttle shared through Redis: failures on either instance count together, a throttled IP is
/// refused everywhere (even with the right password), and while Redis is down the local throttle at limit/N applies.
@Suite("Shared limits: failed-login throttle through Redis", .enabled(if: TestRedis.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedLoginThrottleTests {
    static let right = Credential.basic("alice", "pw-a")
    static let wrong = Credential.basic("alice", "nope")

    static func configure(_ config: inout ServerConfig, redis: TestRedis, limit: Int, fleet: Int = 1,
                          fallback: SharedLimitsSettings.Fallback = .local) throws {
        config.users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        config.authSettings = Authenticator.Settings(workers: 1, failureLimit: limit, failureWindowSeconds: 600)
        var url = RedisConfiguration(url: redis.url)!
        url.initialBackoffMillis = 20
        url.maxBackoffMillis = 100
        var shared = SharedLimitsSettings(redis: url)
        shared.fleetSize = fleet
        shared.fallback = fallback
        config.sharedLimits = shared
    }

    @Test func failuresOnBothInstancesThrottleTheAddressEverywhere() throws {
        let redis = try TestRedis()
        try withProxyAndFake(configure: { try? Self.configure(&$0, redis: redis, limit: 3) }) { a, fake in
            try withProxy(configure: { try? Self.configure(&$0, redis: redis, limit: 3) }, upstream: fake) { b in
                #expect(try a.fetch(Req.get("/api/tags", Self.right)).status == 200)
                // Three failures, spread over the two instances: each alone has seen fewer than three.
                #expect(try a.fetch(Req.get("/api/tags", Self.wrong)).status == 401)
                #expect(try b.fetch(Req.get("/api/tags", Self.wrong)).status == 401)
                #expect(try a.fetch(Req.get("/api/tags", Self.wrong)).status == 401)
                for proxy in [a, b] {
                    let refused = try proxy.fetch(Req.get("/api/tags", Self.right))
                    expectError(refused, status: 429, family: .ollama)
                    #expect((retryAfterSeconds(refused) ?? 0) >= 1)
                    #expect(refused.text.contains("failed logins"))
                }
                #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1") == ":1")
            }
        }
    }

    @Test func aSuccessfulLoginIsNotCounted() throws {
        let redis = try TestRedis()
        try withProxyAndFake(configure: { try? Self.configure(&$0, redis: redis, limit: 2) }) { proxy, _ in
            for _ in 0..<5 {
                let client = try proxy.tls()
                defer { client.close() }
                #expect(try client.exchange(Req.get("/api/tags", Self.right)).status == 200)
            }
            #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1") == ":0")
        }
    }

    @Test func openAndClosedFallbacks() throws {
        let redis = try TestRedis()
        try withProxyAndFake(configure: { try? Self.configure(&$0, redis: redis, limit: 1, fallback: .open) }) { proxy, _ in
            let status = try #require(proxy.server.sharedStatus)
            redis.kill()
            #expect(eventually { !status.isUp })
            // Open: no throttle at all, however many failures.
            for _ in 0..<3 { #expect(try proxy.fetch(Req.get("/api/tags", Self.wrong)).status == 401) }
            #expect(try proxy.fetch(Req.get("/api/tags", Self.right)).status == 200)
            #expect(status.isInFallback(.login))
        }
        try redis.start()
        try withProxyAndFake(configure: { try? Self.configure(&$0, redis: redis, limit: 1, fallback: .closed) }) { proxy, _ in
            let status = try #require(proxy.server.sharedStatus)
            #expect(try proxy.fetch(Req.get("/api/tags", Self.right)).status == 200)
            redis.kill()
            #expect(eventually { !status.isUp })
            // Closed: no password is checked while the fleet-wide throttle cannot say.
            let refused = try proxy.fetch(Req.get("/api/tags", Self.right))
            expectError(refused, status: 503, family: .ollama)
            #expect(refused.head.header("Retry-After") == "1")
            #expect(refused.text.contains("shared limits unavailable"))
            #expect(try proxy.fetch(Req.get("/healthz")).status == 200)
        }
    }

    @Test func localThrottleAtLimitOverFleetSizeWhileRedisIsDown() throws {
        let redis = try TestRedis()
        try withProxyAndFake(configure: { try? Self.configure(&$0, redis: redis, limit: 4, fleet: 2) }) { proxy, _ in
            let status = try #require(proxy.server.sharedStatus)
            redis.kill()
            #expect(eventually { !status.isUp })
            // limit 4 over a fleet of 2: this instance alone throttles after 2 failures.
            #expect(try proxy.fetch(Req.get("/api/tags", Self.wrong)).status == 401)
            #expect(try proxy.fetch(Req.get("/api/tags", Self.wrong)).status == 401)
            expectError(try proxy.fetch(Req.get("/api/tags", Self.right)), status: 429, family: .ollama)
            #expect(status.isInFallback(.login))
            try redis.start()
            #expect(eventually { status.isUp && !status.isInFallback(.login) })
            // Redis restarted empty and decides again: the local count no longer refuses.
            #expect(try proxy.fetch(Req.get("/api/tags", Self.right)).status == 200)
        }
    }
}
