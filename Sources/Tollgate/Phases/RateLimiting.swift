import TollgateHTTP
import TollgateIO

/// The rate-limit phase: nginx's `limit_req ... nodelay` per client address, before authentication, so password
/// guesses are capped too. One bucket per client across every loop and connection, or across the fleet with Redis
/// (`SharedRateLimiting.swift`: the exchange waits for Redis's answer).
struct RateLimiting: ConnectionPhase {
    let limiter: RateLimiter
    /// The fleet-wide limiter with Redis; nil without.
    let shared: (limits: SharedLimits, rate: SharedRateLimiter)?

    init?(config: ServerConfig, worker: Worker) {
        guard let limiter = worker.rateLimiter else { return nil }
        self.limiter = limiter
        shared = worker.shared.flatMap { limits in limits.rate.map { (limits, $0) } }
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        let client = ex.client ?? c.peerHost
        if let shared, !c.isHealthRequest(ex) {
            return c.sharedRateLimit(ex, client: client, limiter: limiter, shared: shared.limits,
                                     sharedRate: shared.rate)
        }
        let decision = limiter.check(client, nowMillis: c.worker.loop.now / 1_000_000)
        return RateLimiting.apply(ex, decision, source: nil, dryRun: limiter.isDryRun,
                                  headers: limiter.headers(for: decision))
    }

    /// Applies a per-IP decision, whoever made it (dry run included). The log outcome is "pass", "exempt",
    /// "dry-run" or "rejected", with `:source` when the shared limiter's path decided ("redis", "cache", "local").
    static func apply(_ ex: Exchange, _ decision: RateDecision, source: String?, dryRun: Bool,
                      headers: @autoclosure () -> [(String, String)]) -> PhaseOutcome {
        func outcome(_ base: String) -> String { source.map { base + ":" + $0 } ?? base }
        guard case .rejected(let retryAfter, _) = decision else {
            ex.rateLimitOutcome = outcome(decision == .exempt ? "exempt" : "pass")
            return .next
        }
        if dryRun {
            ex.rateLimited = true
            ex.rateLimitOutcome = outcome("dry-run")
            return .next
        }
        ex.rateLimitOutcome = outcome("rejected")
        return .answer(ErrorResponse(status: 429, message: "rate limit exceeded: retry in \(retryAfter) s",
                                     headers: headers()), .rateLimited)
    }
}
