/// The outcome of a rate-limit check.
public enum RateDecision: Sendable, Equatable {
    /// Admitted; `remaining` whole requests of the burst are left right now.
    case allowed(remaining: Int)
    /// Over the limit. `retryAfterSeconds` is the `Retry-After` value: whole seconds, rounded up and at least 1,
    /// until a request would pass; `resetMillis` is that same wait in milliseconds, unrounded.
    case rejected(retryAfterSeconds: Int, resetMillis: UInt64)
    /// The client is in an exempt block; nothing was counted.
    case exempt
}
