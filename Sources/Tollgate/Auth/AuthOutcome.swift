/// The answer to one authentication check.
public enum AuthOutcome: Sendable, Equatable {
    /// The credentials are right; proceed as `user`, the name as the users file writes it (whatever Unicode form
    /// the client sent it in).
    case allowed(user: String)
    /// Unknown user or wrong password (indistinguishable on purpose): 401.
    case denied
    /// Too many recent failures from this client prefix, or for this user from it: 429 with
    /// `Retry-After: retryAfterSeconds`, nothing checked.
    case throttled(retryAfterSeconds: Int)
    /// The verification queue is full: 503 with `Retry-After`.
    case overloaded
}
