/// Configuration of the per-client request rate limit, nginx `limit_req` semantics.
///
/// nginx's arithmetic, exactly: per key `excess` in thousandths of a request and `last` in ms; the rate is stored as
/// r/s × 1000. A request computes `e = max(0, excess − rate·elapsed_ms/1000 + 1000)`; `e > burst·1000` is rejected
/// with the state unchanged (rejected requests do not count), otherwise `excess = e` and `last = now`. A key's first
/// request is stored with `excess = 0`, which is why 25 simultaneous requests with burst 20 give 21 passes.
public struct RateLimitSettings: Sendable, Equatable {
    /// Sustained requests per second per key (nginx `rate=10r/s`). Stored as thousandths; at least 0.001.
    public var ratePerSecond: Double = 10
    /// Requests allowed above the rate, served at once (nginx `burst=20 nodelay`).
    public var burst: Int = 20
    /// Keys remembered at most; past it the least recently used key is forgotten.
    public var maxKeys: Int = 100_000
    /// IPv6 clients are grouped by this many leading bits (64: one bucket per /64; 128: per address).
    public var ipv6PrefixLength: Int = 64
    /// Clients inside these blocks are never limited (`RateDecision.exempt`).
    public var exempt: [CIDR] = []
    /// Report rejections but let requests through (nginx `limit_req_dry_run`); see `RateLimiter.check`.
    public var dryRun = false

    /// The defaults: 10 r/s, burst 20, 100 000 keys, IPv6 per /64, nothing exempt, enforcing.
    public init() {}
}
