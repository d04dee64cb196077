import TollgateIO

/// The failed-login throttle across the fleet, with the local throttle's keys (`LoginThrottle`): failures per
/// (client prefix, user) in `tollgate:login:<prefix>:<user>` and per client prefix in `tollgate:login:<prefix>`
/// (`203.0.113.7`, or an IPv6 /64 as `2001:db8:1:2::/64`), each a leaky bucket that holds its limit and drains it
/// over the window. A key is throttled while one more failure would overflow it, i.e. after `limit` failures for
/// one user (or `LoginThrottle.prefixMultiple` × `limit` over all users of a prefix) in quick succession,
/// fleet-wide.
///
/// Loop thread only (one per worker, on its `RedisClient`). Successful logins are never counted: the check before a
/// password is verified only peeks.
final class SharedLoginThrottle {
    /// The GCRA limiter counting failures per (prefix, user) (rate limit/window, burst limit − 1).
    let limiter: SharedRateLimiter
    /// The one counting failures per prefix, at `prefixLimit`. Both cache denials in the same `SharedDenials` (the
    /// keys differ), so `limiter.forgetDenials()` empties it for both.
    let prefixLimiter: SharedRateLimiter
    /// Failures that throttle a user from one prefix.
    let limit: Int
    /// Failures, over all users, that throttle a prefix.
    let prefixLimit: Int

    /// User names longer than this are cut in the Redis key (a longer one is no user anyway; the key stays small).
    static let maxUserBytes = 256

    /// A throttle after `limit` (≥ 1) failures within `windowSeconds`, caching throttles in `denials` (shared by the
    /// process's workers).
    init(client: RedisClient, limit: Int, windowSeconds: Double, denials: SharedDenials = SharedDenials()) {
        self.limit = max(1, limit)
        let (product, overflow) = self.limit.multipliedReportingOverflow(by: LoginThrottle.prefixMultiple)
        prefixLimit = overflow ? 1 << 30 : product
        let window = max(0.001, windowSeconds)
        limiter = SharedRateLimiter(client: client, ratePerSecond: Double(self.limit) / window, burst: self.limit - 1,
                                    keyPrefix: "tollgate:login:", denials: denials)
        prefixLimiter = SharedRateLimiter(client: client, ratePerSecond: Double(prefixLimit) / window,
                                          burst: prefixLimit - 1, keyPrefix: "tollgate:login:", denials: denials)
    }

    /// The Redis keys (without `tollgate:login:`) for `key`: per (prefix, user), per prefix.
    static func redisKeys(_ key: LoginThrottle.Key) -> (user: String, prefix: String) {
        let prefix = key.prefixText
        var user = key.user
        if user.utf8.count > maxUserBytes { user = String(decoding: user.utf8.prefix(maxUserBytes), as: UTF8.self) }
        return (prefix + ":" + user, prefix)
    }

    /// Whether `key` is throttled now (its prefix, or its user from that prefix): `.decided(.rejected(...))` with
    /// the longer Retry-After, `.decided(.allowed)` when neither is, `.unavailable` when Redis cannot say for either.
    /// Both are asked at once; `completion` runs once, when both have answered (possibly before this returns).
    func check(_ key: LoginThrottle.Key, completion: @escaping (SharedRateOutcome) -> Void) {
        let keys = SharedLoginThrottle.redisKeys(key)
        var first: SharedRateOutcome?
        let join: (SharedRateOutcome) -> Void = { outcome in
            guard let earlier = first else {
                first = outcome
                return
            }
            completion(SharedLoginThrottle.combine(earlier, outcome))
        }
        limiter.peek(key: keys.user, completion: join)
        prefixLimiter.peek(key: keys.prefix, completion: join)
    }

    /// Counts one failed login for `key` under both keys; `completion` gets true when this failure is the one that
    /// throttles the user or the prefix (log it once), false otherwise, or the error.
    func recordFailure(_ key: LoginThrottle.Key, completion: @escaping (Result<Bool, RedisError>) -> Void) {
        let keys = SharedLoginThrottle.redisKeys(key)
        var first: Result<Bool, RedisError>?
        let join: (SharedRateOutcome) -> Void = { outcome in
            let result: Result<Bool, RedisError>
            switch outcome {
            case .decided(.allowed(let remaining)): result = .success(remaining == 0)
            case .decided: result = .success(false)
            case .unavailable(let error): result = .failure(error)
            }
            guard let earlier = first else {
                first = result
                return
            }
            switch (earlier, result) {
            case (.failure(let e), _), (_, .failure(let e)): completion(.failure(e))
            case (.success(let a), .success(let b)): completion(.success(a || b))
            }
        }
        limiter.check(key: keys.user, completion: join)
        prefixLimiter.check(key: keys.prefix, completion: join)
    }

    /// Throttled if either is; unavailable if either cannot say and the other does not throttle.
    static func combine(_ a: SharedRateOutcome, _ b: SharedRateOutcome) -> SharedRateOutcome {
        switch (a, b) {
        case (.decided(.rejected(let s1, let m1)), .decided(.rejected(let s2, let m2))):
            return .decided(.rejected(retryAfterSeconds: max(s1, s2), resetMillis: max(m1, m2)))
        case (.decided(.rejected), _): return a
        case (_, .decided(.rejected)): return b
        case (.unavailable, _): return a
        case (_, .unavailable): return b
        default: return a
        }
    }
}
