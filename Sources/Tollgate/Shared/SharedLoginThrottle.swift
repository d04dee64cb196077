import TollgateIO

/// The failed-login throttle across the fleet: failures per client IP counted in Redis (keys `tollgate:login:<ip>`)
/// as a leaky bucket that holds `limit` failures and drains one per `window / limit`. An IP is throttled while one
/// more failure would overflow it, i.e. after `limit` failures in quick succession, fleet-wide.
///
/// Loop thread only (one per worker, on its `RedisClient`). Successful logins are never counted: the check before a
/// password is verified only peeks.
final class SharedLoginThrottle {
    /// The GCRA limiter counting failures (rate limit/window, burst limit − 1).
    let limiter: SharedRateLimiter
    /// Failures that throttle an IP.
    let limit: Int

    /// A throttle after `limit` (≥ 1) failures within `windowSeconds`, caching throttles in `denials` (shared by the
    /// process's workers).
    init(client: RedisClient, limit: Int, windowSeconds: Double, denials: SharedDenials = SharedDenials()) {
        self.limit = max(1, limit)
        let rate = Double(self.limit) / max(0.001, windowSeconds)
        limiter = SharedRateLimiter(client: client, ratePerSecond: rate, burst: self.limit - 1, keyPrefix: "tollgate:login:",
                                    denials: denials)
    }

    /// Whether `ip` is throttled now: `.decided(.rejected(...))` with its Retry-After, `.decided(.allowed)` when not,
    /// `.unavailable` when Redis cannot say. May complete before returning (a cached throttle).
    func check(_ ip: String, completion: @escaping (SharedRateOutcome) -> Void) {
        limiter.peek(key: ip, completion: completion)
    }

    /// Counts one failed login by `ip`; `completion` gets true when this failure is the one that throttles it (log it
    /// once), false otherwise, or the error.
    func recordFailure(_ ip: String, completion: @escaping (Result<Bool, RedisError>) -> Void) {
        limiter.check(key: ip) { outcome in
            switch outcome {
            case .decided(.allowed(let remaining)): completion(.success(remaining == 0))
            case .decided: completion(.success(false))
            case .unavailable(let error): completion(.failure(error))
            }
        }
    }
}
