import Testing
@testable import Tollgate
import TollgateIO

/// The shared-limits settings: parsed into `ServerConfig.sharedLimits`, a bad URL named with its file and line
/// (password hidden), the password never printed by check-config, and the fallback arithmetic.
@Suite struct ConfigSharedLimitsTests {
    func config(_ text: String) throws -> ServerConfig {
        let file = try parseConfig("listen-plain = 127.0.0.1:8080\n" + text)
        return try ServerConfig(resolved: try ConfigResolver.resolve(flags: [:], environment: [:], file: file), cores: 1)
    }

    @Test func unsetRedisKeepsLimitsLocal() throws {
        #expect(try config("").sharedLimits == nil)
    }

    @Test func everySettingReachesTheConfig() throws {
        let c = try config("""
            redis = redis://app:s3cret@10.0.0.9:6380/2
            fleet-size = 3
            redis-fallback = closed
            redis-timeout = 0.5
            slot-lease = 12
            """)
        let shared = try #require(c.sharedLimits)
        #expect(shared.redis.host == "10.0.0.9")
        #expect(shared.redis.port == 6380)
        #expect(shared.redis.database == 2)
        #expect(shared.redis.username == "app")
        #expect(shared.redis.password == "s3cret")
        #expect(shared.redis.commandTimeoutMillis == 500)
        #expect(shared.fleetSize == 3)
        #expect(shared.fallback == .closed)
        #expect(shared.slotLeaseMillis == 12_000)
    }

    @Test func defaults() throws {
        let shared = try #require(try config("redis = redis://127.0.0.1\n").sharedLimits)
        #expect(shared.redis.port == 6379)
        #expect(shared.fleetSize == 1)
        #expect(shared.fallback == .local)
        #expect(shared.redis.commandTimeoutMillis == 250)
        #expect(shared.slotLeaseMillis == 30_000)
    }

    @Test func aBadURLNamesTheSettingAndLineWithoutThePassword() throws {
        let file = try parseConfig("listen-plain = 127.0.0.1:8080\nredis = redis://u:hunter2@host:99999\n")
        let resolved = try ConfigResolver.resolve(flags: [:], environment: [:], file: file)
        do {
            _ = try ServerConfig(resolved: resolved, cores: 1)
            Issue.record("accepted a bad port")
        } catch {
            let text = error.description
            #expect(text.contains("tollgate.conf:2"), "\(text)")
            #expect(text.contains("redis"), "\(text)")
            #expect(!text.contains("hunter2"), "\(text)")
        }
        for bad in ["http://host", "redis://", "redis://host/db"] {
            let f = try parseConfig("listen-plain = 127.0.0.1:8080\nredis = \(bad)\n")
            let r = try ConfigResolver.resolve(flags: [:], environment: [:], file: f)
            #expect(throws: ConfigError.self, "\(bad)") { try ServerConfig(resolved: r, cores: 1) }
        }
    }

    @Test func outOfRangeValuesAreRefusedAtLoad() {
        #expect(!resolveErrors(flags: ["fleet-size": ["0"]]).isEmpty)
        #expect(!resolveErrors(flags: ["fleet-size": ["1001"]]).isEmpty)
        #expect(!resolveErrors(flags: ["redis-fallback": ["maybe"]]).isEmpty)
        #expect(!resolveErrors(flags: ["redis-timeout": ["0"]]).isEmpty)
    }

    @Test func checkConfigOutputHidesThePassword() throws {
        let file = try parseConfig("redis = redis://app:s3cret@10.0.0.9:6380/2\n")
        let text = try ConfigResolver.resolve(flags: [:], environment: [:], file: file).render()
        #expect(text.contains("redis = redis://app:***@10.0.0.9:6380/2"), "\(text)")
        #expect(!text.contains("s3cret"))
        #expect(ResolvedConfig.redactedRedis("redis://:pw@h") == "redis://:***@h")
        #expect(ResolvedConfig.redactedRedis("redis://h:1/0") == "redis://h:1/0")
    }

    @Test func everyURLShapeAndEveryEchoHidesThePassword() throws {
        // A `/` in the password, another scheme or its case, and a password given alone.
        #expect(ResolvedConfig.redactedRedis("redis://:ab/cd@127.0.0.1:1") == "redis://:***@127.0.0.1:1")
        #expect(ResolvedConfig.redactedRedis("rediss://:pw@h:1") == "rediss://:***@h:1")
        #expect(ResolvedConfig.redactedRedis("REDIS://app:pw@h") == "REDIS://app:***@h")
        #expect(ResolvedConfig.redactedRedis("redis://pw@h") == "redis://***@h")
        #expect(ResolvedConfig.redactedRedis("redis://:p?w#x@h") == "redis://:***@h")
        let file = try parseConfig("redis = redis://:ab/cd@127.0.0.1:1\n")
        let text = try ConfigResolver.resolve(flags: [:], environment: [:], file: file).render()
        #expect(text.contains("redis = redis://:***@127.0.0.1:1"), "\(text)")
        #expect(!text.contains("ab/cd"), "\(text)")
        for url in ["rediss://:s3cretpw@h:1", "REDIS://:s3cretpw@h:1", "redis://:s3cretpw@h:99999"] {
            let f = try parseConfig("listen-plain = 127.0.0.1:8080\nredis = \(url)\n")
            let r = try ConfigResolver.resolve(flags: [:], environment: [:], file: f)
            do {
                _ = try ServerConfig(resolved: r, cores: 1)
                Issue.record("accepted \(url)")
            } catch {
                #expect(error.description.contains("tollgate.conf:2"), "\(error.description)")
                #expect(!error.description.contains("s3cretpw"), "\(error.description)")
            }
        }
        // A malformed line (a colon for the equals sign) is echoed without the password.
        let lines = configErrors("redis: redis://:s3cretpw@10.0.0.9:6379\n")
        #expect(lines.count == 1 && lines[0].contains("redis://:***@10.0.0.9:6379"), "\(lines)")
        #expect(!lines.joined().contains("s3cretpw"), "\(lines)")
        #expect(!resolveErrors(environment: ["TOLLGATE_FLEET_SIZE": "x://:s3cretpw@h"]).joined().contains("s3cretpw"))
    }

    @Test func fallbackSharesRoundUpAndAreAtLeastOne() {
        var shared = SharedLimitsSettings(redis: RedisConfiguration(host: "h"))
        shared.fleetSize = 3
        var rate = RateLimitSettings()
        rate.ratePerSecond = 9
        rate.burst = 20
        let local = shared.fallbackRate(rate)
        #expect(local.ratePerSecond == 3)
        #expect(local.burst == 7)
        var caps = ConcurrencyLimiter.Settings()
        caps.perUser = 2
        caps.global = 4
        let localCaps = shared.fallbackConcurrency(caps)
        #expect(localCaps.perUser == 1)
        #expect(localCaps.global == 2)
        #expect(localCaps.queueLimit == caps.queueLimit)
    }

    @Test func aRedisChangeNeedsARestart() throws {
        var old = ServerConfig()
        old.listen = []
        old.listenPlain = [SocketAddress(parsing: "127.0.0.1:0")!]
        old.workers = 1
        old.accessLog = .none
        old.metricsListen = []
        let server = try Server(config: old)
        defer { server.shutdown(graceSeconds: 0) }
        var new = old
        new.sharedLimits = SharedLimitsSettings(redis: RedisConfiguration(host: "127.0.0.1"))
        let messages = try server.reload(new)
        #expect(messages.contains { $0.contains("redis") && $0.contains("restart") }, "\(messages)")
        #expect(server.config.sharedLimits == nil)
    }
}
