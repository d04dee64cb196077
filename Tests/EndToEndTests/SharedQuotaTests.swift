import FakeOllama
import Foundation
import Synchronization
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

/// Token and request quotas as balances in Redis: two in-process Tollgates draw from one balance per user; a hold
/// left by an instance that died is released by the next reservation; while Redis is down each instance decides from
/// its own book at limit/N and says so in the shared-limits status.
@Suite("Shared limits: quota balances in Redis", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedQuotaTests {
    static let alice = Credential.basic("alice", "pw-a")

    static func configure(_ config: inout ServerConfig, redis: RedisServerProcess, policies: [String], fleet: Int = 1) throws {
        config.users = try TestUsers.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n")
        config.authSettings = Authenticator.Settings(workers: 2, failureLimit: 0)
        config.policies = try ServerConfig(resolved: ConfigResolver.resolve(flags: ["policy": policies], environment: [:],
                                                                            file: nil), cores: 1).policies
        config.sharedLimits = redis.sharedLimits(fleet: fleet)
    }

    /// The value of hash `field` of the first key matching `pattern` (0 when there is none).
    static func field(_ redis: RedisServerProcess, _ pattern: String, _ field: String) throws -> Int {
        let reply = try redis.command("EVAL", "local k = redis.call('KEYS', ARGV[1]) if #k == 0 then return 0 end "
                                      + "return tonumber(redis.call('HGET', k[1], ARGV[2])) or 0", "0", pattern, field)
        return Int(reply.dropFirst()) ?? -1
    }

    /// The UTC day number in alice's day key (0 when there is none).
    static func day(_ redis: RedisServerProcess) throws -> Int {
        let reply = try redis.command("EVAL", "local k = redis.call('KEYS', 'tollgate:{quota}:day:*:alice') "
                                      + "if #k == 0 then return 0 end return tonumber(string.match(k[1], 'day:(%d+):'))", "0")
        return Int(reply.dropFirst()) ?? -1
    }

    /// Keys matching `pattern`.
    static func count(_ redis: RedisServerProcess, _ pattern: String) throws -> Int {
        let reply = try redis.command("EVAL", "return #redis.call('KEYS', ARGV[1])", "0", pattern)
        return Int(reply.dropFirst()) ?? -1
    }

    @Test func twoInstancesDrawFromOneBalance() throws {
        let redis = try RedisServerProcess()
        try withTwoProxies(configure: {
            try Self.configure(&$0, redis: redis, policies: ["alice requests-per-day=3 tokens-per-day=100000 max-predict=20"])
        }) { a, b, _ in
            #expect(eventually { a.server.sharedStatus?.isUp == true && b.server.sharedStatus?.isUp == true },
                    "never connected to Redis")
            #expect(try a.fetch(Req.generate(Self.alice)).status == 200)
            #expect(try b.fetch(Req.generate(Self.alice)).status == 200)
            #expect(try a.fetch(Req.generate(Self.alice)).status == 200)
            // The fourth, on either instance, finds the fleet's daily requests spent.
            for proxy in [b, a] {
                let refused = try proxy.fetch(Req.generate(Self.alice))
                expectError(refused, status: 429, family: .ollama)
                #expect(refused.head.header("RateLimit-Policy")?.hasPrefix("\"requests-day\";q=3") == true)
            }
            #expect(eventually { (try? Self.field(redis, "tollgate:{quota}:day:*:alice", "requests")) == 3 })
            #expect(try Self.field(redis, "tollgate:{quota}:day:*:alice", "tokens") > 0)
            // Nothing is held once the requests have ended.
            #expect(try redis.command("ZCARD", "tollgate:{quota}:holds:alice") == ":0")
            // Bob has no policy line: no quota, no Redis balance.
            #expect(try a.fetch(Req.generate(Credential.basic("bob", "pw-b"))).status == 200)
            #expect(try Self.count(redis, "tollgate:{quota}:*bob*") == 0)
        }
    }

    /// Twelve requests at once, six on each instance, against a fleet-wide quota of five: exactly five pass.
    @Test func concurrentRequestsOnBothInstancesNeverOvershoot() throws {
        let redis = try RedisServerProcess()
        try withTwoProxies(configure: {
            try Self.configure(&$0, redis: redis, policies: ["alice requests-per-day=5"])
        }) { a, b, _ in
            #expect(eventually { a.server.sharedStatus?.isUp == true && b.server.sharedStatus?.isUp == true },
                    "never connected to Redis")
            let statuses = Mutex<[Int]>([])
            DispatchQueue.concurrentPerform(iterations: 12) { i in
                let status = (try? (i % 2 == 0 ? a : b).fetch(Req.generate(Self.alice)).status) ?? -1
                statuses.withLock { $0.append(status) }
            }
            let all = statuses.withLock { $0 }
            #expect(all.filter { $0 == 200 }.count == 5, "\(all)")
            #expect(all.filter { $0 == 429 }.count == 7, "\(all)")
            #expect(eventually { (try? Self.field(redis, "tollgate:{quota}:day:*:alice", "requests")) == 5 })
        }
    }

    /// Joining adds an instance's spending once: a second instance adds its own (the fleet's balance is the sum), and
    /// an instance restarting beside a Redis that kept its data (the same member id) adds nothing again. A Redis that
    /// lost its data has no members: every instance adds its spending again.
    @Test func joiningAddsEachInstancesSpendingOnce() throws {
        let redis = try RedisServerProcess()
        let configuration = RedisConfiguration(url: redis.url())!
        let client = BlockingRedis(configuration: configuration, address: try configuration.resolve())
        let now: Int64 = 1_773_576_000   // 2026-03-15 12:00 UTC
        let spent = ["alice": Spending(dayTokens: 700, monthTokens: 9000, dayRequests: 3)]
        #expect(try SharedQuotas.join(spent, member: "aaaa", now: now, through: client))
        #expect(try Self.field(redis, "tollgate:{quota}:day:*:alice", "tokens") == 700)
        #expect(try Self.field(redis, "tollgate:{quota}:day:*:alice", "requests") == 3)
        #expect(try Self.field(redis, "tollgate:{quota}:month:*:alice", "tokens") == 9000)
        let other = ["alice": Spending(dayTokens: 50, monthTokens: 50, dayRequests: 1)]
        #expect(try SharedQuotas.join(other, member: "bbbb", now: now + 60, through: client))
        #expect(try Self.field(redis, "tollgate:{quota}:day:*:alice", "tokens") == 750)
        #expect(try Self.field(redis, "tollgate:{quota}:day:*:alice", "requests") == 4)
        #expect(try Self.field(redis, "tollgate:{quota}:month:*:alice", "tokens") == 9050)
        // The first instance restarts: a member already.
        #expect(try !SharedQuotas.join(spent, member: "aaaa", now: now + 120, through: client))
        #expect(try Self.field(redis, "tollgate:{quota}:day:*:alice", "tokens") == 750)
        _ = try redis.command("FLUSHALL")
        #expect(try SharedQuotas.join(spent, member: "aaaa", now: now + 180, through: client))
        #expect(try Self.field(redis, "tollgate:{quota}:day:*:alice", "tokens") == 700)
    }

    /// A Redis that restarts empty does not hand out a fresh quota: the running instance's next reservation is told to
    /// join first, adds what its own book spent, and is decided against that.
    @Test func aRedisThatLostItsDataGetsTheSpendingBack() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: { config in
            try? Self.configure(&config, redis: redis, policies: ["alice requests-per-day=2"])
        }) { proxy, _ in
            #expect(eventually { proxy.server.sharedStatus?.isUp == true }, "never connected to Redis")
            for _ in 0..<2 { #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200) }
            #expect(eventually { (try? Self.field(redis, "tollgate:{quota}:day:*:alice", "requests")) == 2 })
            _ = try redis.command("FLUSHALL")
            expectError(try proxy.fetch(Req.generate(Self.alice)), status: 429, family: .ollama)
            #expect(try Self.field(redis, "tollgate:{quota}:day:*:alice", "requests") == 2)
        }
    }

    @Test func aHoldLeftByADeadInstanceIsReleasedByTheNextReservation() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: { config in
            try? Self.configure(&config, redis: redis, policies: ["alice requests-per-day=2"])
        }) { proxy, _ in
            #expect(eventually { proxy.server.sharedStatus?.isUp == true }, "never connected to Redis")
            // Learn the day number from a first request.
            #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200)
            // The settlement reaches Redis just after the response.
            try #require(eventually { ((try? Self.day(redis)) ?? 0) > 0 }, "the request was never settled in Redis")
            let day = try Self.day(redis)
            // Another Tollgate reserved the last request and died: its hold's deadline has passed.
            _ = try redis.command("HSET", "tollgate:{quota}:held:alice", "dead:1", "0 \(day) 0", "r:\(day)", "1")
            _ = try redis.command("ZADD", "tollgate:{quota}:holds:alice", "1", "dead:1")
            #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200)
            #expect(try redis.command("HEXISTS", "tollgate:{quota}:held:alice", "dead:1") == ":0")
            expectError(try proxy.fetch(Req.generate(Self.alice)), status: 429, family: .ollama)
        }
    }

    @Test func whileRedisIsDownEachInstanceDecidesAtItsShare() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(configure: { config in
            try? Self.configure(&config, redis: redis, policies: ["alice requests-per-day=4"], fleet: 2)
        }) { proxy, _ in
            #expect(eventually { proxy.server.sharedStatus?.isUp == true }, "never connected to Redis")
            #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200)   // through Redis
            #expect(eventually { (try? Self.field(redis, "tollgate:{quota}:day:*:alice", "requests")) == 1 })
            let status = try redis.kill(seenBy: proxy)
            // Local share: 4 / 2 = 2 requests a day, counting this instance's own spending (1 so far).
            #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200)
            #expect(status.isInFallback(.quota))
            expectError(try proxy.fetch(Req.generate(Self.alice)), status: 429, family: .ollama)
        }
    }
}
