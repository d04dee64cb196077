/// A rate and burst in nginx's fixed-point units, and how a bucket's state becomes a `RateDecision` and headers.
///
/// Shared by `RateLimiter` (per client address) and `UserRateLimiter` (per user name).
struct RatePolicy: Sendable {
    /// Requests per second × 1000 (nginx stores `10r/s` as 10000), 1...1e9.
    let rate: Int
    /// Burst in thousandths of a request.
    let burst: Int
    /// Burst in whole requests.
    let burstRequests: Int
    /// The policy name in the headers.
    let name: String
    /// The precomputed `RateLimit-Policy` value.
    let policyHeader: String

    init(ratePerSecond: Double, burst: Int, name: String) {
        let scaled = (ratePerSecond * 1000).rounded()
        rate = scaled.isFinite ? Int(min(max(scaled, 1), 1e9)) : 1
        burstRequests = max(0, min(burst, 1 << 30))
        self.burst = burstRequests * 1000
        self.name = name
        // RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers-10): `"name";q=<quota>;w=<window seconds>`.
        // A leaky bucket has no fixed window: q is the burst and w the seconds it takes to refill (burst / rate);
        // with no burst, q is the whole requests per second and w = 1.
        let q: Int
        let w: Int
        if burstRequests > 0 {
            q = burstRequests
            w = max(1, (self.burst + rate - 1) / rate)
        } else {
            q = max(1, rate / 1000)
            w = 1
        }
        policyHeader = "\"\(name)\";q=\(q);w=\(w)"
    }

    /// Seconds for `thousandths` of excess to drain, rounded up.
    func drainSeconds(_ thousandths: Int) -> Int {
        (thousandths + rate - 1) / rate
    }

    /// A fresh key: admitted with `excess = 0`, as nginx stores a new node.
    func admitFresh(now: UInt64) -> (LeakyBucket, RateDecision) {
        (LeakyBucket(excess: 0, last: now), .allowed(remaining: burstRequests))
    }

    /// Applies one request at `now` to an existing bucket.
    func admit(_ bucket: inout LeakyBucket, now: UInt64) -> RateDecision {
        if let e = bucket.take(now: now, rate: rate, burst: burst) {
            return .allowed(remaining: (burst - e) / 1000)
        }
        let wait = bucket.waitMillis(now: now, rate: rate, burst: burst)
        let seconds = max(1, Int((wait + 999) / 1000))
        return .rejected(retryAfterSeconds: seconds, resetMillis: wait)
    }

    /// Response headers for a decision: `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10
    /// syntax, `"name";r=<remaining>;t=<seconds>`), plus `Retry-After` when rejected; none when exempt.
    /// For an admitted request `t` is the seconds until the whole burst is available again.
    func headers(for decision: RateDecision) -> [(String, String)] {
        switch decision {
        case .allowed(let remaining):
            let used = max(0, burstRequests - remaining)
            return [("RateLimit-Policy", policyHeader),
                    ("RateLimit", "\"\(name)\";r=\(remaining);t=\(drainSeconds(used * 1000))")]
        case .rejected(let retryAfter, _):
            return [("Retry-After", String(retryAfter)),
                    ("RateLimit-Policy", policyHeader),
                    ("RateLimit", "\"\(name)\";r=0;t=\(retryAfter)")]
        case .exempt:
            return []
        }
    }
}
