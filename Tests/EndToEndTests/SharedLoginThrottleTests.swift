import FakeOllama
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

/// The failed-login throttle shared through Redis, with the local throttle's keys: failures on either instance count
/// together per (client prefix, user) and per prefix, a throttled user or prefix is refused everywhere (even with the
/// right password, unless that instance has already verified it), and while Redis is down the local throttle at
/// limit/N applies.
@Suite("Shared limits: failed-login throttle through Redis", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedLoginThrottleTests {
    static let right = Credential.basic("alice", "pw-a")
    static let wrong = Credential.basic("alice", "nope")

    static func configure(_ config: inout ServerConfig, redis: RedisServerProcess, limit: Int, fleet: Int = 1,
                          fallback: SharedLimitsSettings.Fallback = .local) throws {
        config.users = try TestUsers.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n")
        config.authSettings = Authenticator.Settings(workers: 1, failureLimit: limit, failureWindowSeconds: 600)
        config.sharedLimits = redis.sharedLimits(fleet: fleet, fallback: fallback)
    }

    @Test func failuresOnBothInstancesThrottleTheUserFromThatAddressEverywhere() throws {
        let redis = try RedisServerProcess()
        try withTwoProxies(configure: { try Self.configure(&$0, redis: redis, limit: 3) }) { a, b, _ in
            #expect(try a.fetch(Req.get("/api/tags", Self.right)).status == 200)
            // Three failures, spread over the two instances: each alone has seen fewer than three.
            #expect(try a.fetch(Req.get("/api/tags", Self.wrong)).status == 401)
            #expect(try b.fetch(Req.get("/api/tags", Self.wrong)).status == 401)
            #expect(try a.fetch(Req.get("/api/tags", Self.wrong)).status == 401)
            // b never verified alice's password: it is not checked there.
            let refused = try b.fetch(Req.get("/api/tags", Self.right))
            expectError(refused, status: 429, family: .ollama)
            #expect((retryAfterSeconds(refused) ?? 0) >= 1)
            #expect(refused.text.contains("failed logins"))
            // a verified it before the failures, which it did not cause: still allowed there, without asking Redis.
            #expect(try a.fetch(Req.get("/api/tags", Self.right)).status == 200)
            // bob, from the same address, is not locked out by failures for alice.
            for proxy in [a, b] { #expect(try proxy.fetch(Req.get("/api/tags", Credential.basic("bob", "pw-b"))).status == 200) }
            #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1:alice") == ":1")
            #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1:bob") == ":0")
        }
    }

    @Test func everySpellingOfAListedUserCountsUnderOneName() throws {
        // Swift finds "jose\u{301}" under the entry written "jos\u{E9}"; Redis compares bytes. Failures sent in
        // either form are counted under the users file's spelling, so switching forms does not evade the throttle.
        let redis = try RedisServerProcess()
        let composed = "jos\u{E9}"
        let decomposed = "jose\u{301}"
        try withTwoProxies(configure: { config in
            try Self.configure(&config, redis: redis, limit: 2)
            config.users = try TestUsers.parse("\(composed):{PLAIN}pw-j\n")
        }) { a, b, _ in
            #expect(try a.fetch(Req.get("/api/tags", Credential.basic(decomposed, "nope"))).status == 401)
            #expect(try b.fetch(Req.get("/api/tags", Credential.basic(composed, "nope"))).status == 401)
            for (proxy, name) in [(a, composed), (b, decomposed)] {
                expectError(try proxy.fetch(Req.get("/api/tags", Credential.basic(name, "pw-j"))), status: 429,
                            family: .ollama)
            }
            #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1:\(composed)") == ":1")
            #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1:\(decomposed)") == ":0")
        }
    }

    @Test func failuresForManyUsersThrottleTheAddressEverywhere() throws {
        let redis = try RedisServerProcess()
        try withTwoProxies(configure: { try Self.configure(&$0, redis: redis, limit: 1) }) { a, b, _ in
            // The per-address limit is three times the per-user one: three names, one failure each.
            #expect(try a.fetch(Req.get("/api/tags", Credential.basic("u1", "x"))).status == 401)
            #expect(try b.fetch(Req.get("/api/tags", Credential.basic("u2", "x"))).status == 401)
            #expect(try a.fetch(Req.get("/api/tags", Credential.basic("u3", "x"))).status == 401)
            for proxy in [a, b] {
                expectError(try proxy.fetch(Req.get("/api/tags", Credential.basic("bob", "pw-b"))), status: 429,
                            family: .ollama)
            }
            #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1") == ":1")
            #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1:u2") == ":1")
        }
    }

    @Test func aSuccessfulLoginIsNotCounted() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: { try? Self.configure(&$0, redis: redis, limit: 2) }) { proxy, _ in
            for _ in 0..<5 {
                let client = try proxy.tls()
                defer { client.close() }
                #expect(try client.exchange(Req.get("/api/tags", Self.right)).status == 200)
            }
            #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1") == ":0")
            #expect(try redis.command("EXISTS", "tollgate:login:127.0.0.1:alice") == ":0")
        }
    }

    @Test func openAndClosedFallbacks() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: { try? Self.configure(&$0, redis: redis, limit: 1, fallback: .open) }) { proxy, _ in
            let status = try redis.kill(seenBy: proxy)
            // Open: no throttle at all, however many failures.
            for _ in 0..<3 { #expect(try proxy.fetch(Req.get("/api/tags", Self.wrong)).status == 401) }
            #expect(try proxy.fetch(Req.get("/api/tags", Self.right)).status == 200)
            #expect(status.isInFallback(.login))
        }
        try redis.start()
        try withProxyAndFake(configure: { try? Self.configure(&$0, redis: redis, limit: 1, fallback: .closed) }) { proxy, _ in
            #expect(try proxy.fetch(Req.get("/api/tags", Self.right)).status == 200)
            try redis.kill(seenBy: proxy)
            // Closed: no password is checked while the fleet-wide throttle cannot say...
            let refused = try proxy.fetch(Req.get("/api/tags", Credential.basic("bob", "pw-b")))
            expectError(refused, status: 503, family: .ollama)
            #expect(refused.head.header("Retry-After") == "1")
            #expect(refused.text.contains("shared limits unavailable"))
            // ...but a credential this instance already verified needs no throttle's word: no failure refuses it.
            #expect(try proxy.fetch(Req.get("/api/tags", Self.right)).status == 200)
            #expect(try proxy.fetch(Req.get("/healthz")).status == 200)
        }
    }

    @Test func localThrottleAtLimitOverFleetSizeWhileRedisIsDown() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: { try? Self.configure(&$0, redis: redis, limit: 4, fleet: 2) }) { proxy, _ in
            let status = try redis.kill(seenBy: proxy)
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
