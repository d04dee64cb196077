import TollgateIO

/// How limits are shared by a fleet of Tollgates through one Redis (`redis`, `fleet-size`, `redis-fallback`,
/// `redis-timeout`, `slot-lease`). Absent from `ServerConfig` when `redis` is unset: limits are then local.
public struct SharedLimitsSettings: Sendable, Equatable {
    /// What a limiter does while Redis cannot answer.
    public enum Fallback: String, Sendable, Equatable, CaseIterable {
        /// Limit locally at rate/N, burst and caps/N rounded up (N = `fleetSize`).
        case local
        /// Admit everything.
        case open
        /// Refuse with 503, `Retry-After: 1` and "shared limits unavailable".
        case closed
    }

    /// Where Redis is (the command timeout is `redis-timeout`); the host is resolved by `Server` at start-up.
    public var redis: RedisConfiguration
    /// Tollgates sharing that Redis (1...1000).
    public var fleetSize = 1
    /// The policy while Redis is unavailable.
    public var fallback: Fallback = .local
    /// Inference slot lease in milliseconds (heartbeat every third of it).
    public var slotLeaseMillis: UInt64 = 30_000

    /// Settings for `redis` with the defaults: fleet of 1, local fallback, 30 s leases.
    public init(redis: RedisConfiguration) {
        self.redis = redis
    }

    /// `value / fleetSize` rounded up and at least 1: a cap or burst for one instance while Redis is down.
    public func share(_ value: Int) -> Int {
        max(1, (value + fleetSize - 1) / max(1, fleetSize))
    }

    /// The local per-IP limit while Redis is down: rate/N, burst/N rounded up (exemptions and dry run kept).
    public func fallbackRate(_ settings: RateLimitSettings) -> RateLimitSettings {
        var s = settings
        s.ratePerSecond = settings.ratePerSecond / Double(max(1, fleetSize))
        s.burst = settings.burst == 0 ? 0 : share(settings.burst)
        return s
    }

    /// The local in-flight caps while Redis is down: caps/N rounded up, at least 1; queue and timeout unchanged.
    public func fallbackConcurrency(_ settings: ConcurrencyLimiter.Settings) -> ConcurrencyLimiter.Settings {
        var s = settings
        s.perUser = share(settings.perUser)
        s.global = share(settings.global)
        return s
    }
}
