/// What a `LoginThrottleStore` decided before a password check.
enum LoginVerdict {
    /// Check the password, applying this process's throttle (`throttle`) or not (the fleet's decided).
    case check(throttle: Bool)
    /// The client prefix, or the user from it, is throttled: 429 with this Retry-After.
    case throttled(retryAfterSeconds: Int)
    /// The shared limits cannot answer and their fallback refuses: 503.
    case unavailable
}
