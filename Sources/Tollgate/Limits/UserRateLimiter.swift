/// Optional per-user request rate: the same nginx arithmetic and bounded LRU table as `RateLimiter`, keyed by the
/// authenticated user name.
///
/// Thread-safe; one bucket per user across all event loops. Hashes the name on each call (no allocation).
public final class UserRateLimiter: Sendable {
    let policy: RatePolicy
    private let buckets: ShardedBuckets<String>

    /// `ratePerSecond` requests per second per user with `burst` extra at once; at most `maxKeys` users remembered.
    public init(ratePerSecond: Double, burst: Int, maxKeys: Int) {
        policy = RatePolicy(ratePerSecond: ratePerSecond, burst: burst, name: "user")
        buckets = ShardedBuckets(maxKeys: maxKeys)
    }

    /// Counts one request by `user` at `nowMillis`.
    public func check(user: String, nowMillis: UInt64) -> RateDecision {
        buckets.check(user, now: nowMillis, policy: policy)
    }

    /// Counts one request by `user` at `nowMillis` under `policy` (a user's own rate from a `policy` line).
    func check(user: String, nowMillis: UInt64, policy: RatePolicy) -> RateDecision {
        buckets.check(user, now: nowMillis, policy: policy)
    }

    /// Users currently held.
    public var keyCount: Int { buckets.count }

    /// Headers for `decision`, as `RateLimiter.headers(for:)` but with the policy named `"user"`.
    public func headers(for decision: RateDecision) -> [(String, String)] {
        policy.headers(for: decision)
    }
}
