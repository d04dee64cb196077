import TollgateIO

/// What a shared (Redis-backed) limiter decided, or that it could not decide.
public enum SharedRateOutcome: Sendable, Equatable {
    /// Redis (or the local "denied until" cache) decided; the same values the local `RateLimiter` gives.
    case decided(RateDecision)
    /// Redis is down, slow or refused the script: the caller applies its fallback policy (local limit at rate/N,
    /// fail open, or fail closed). Nothing was counted.
    case unavailable(RedisError)
}
