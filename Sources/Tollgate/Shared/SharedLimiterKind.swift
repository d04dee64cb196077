/// The limiters that share their state through Redis; the `limiter` label of `tollgate_redis_fallback`.
public enum SharedLimiterKind: String, Sendable, CaseIterable {
    /// The per-IP request rate.
    case rate
    /// The failed-login throttle.
    case login
    /// Inference slots (in-flight caps).
    case slots
    /// Token and request quotas (the `policy` lines' balances).
    case quota
}
