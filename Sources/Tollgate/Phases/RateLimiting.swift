import TollgateHTTP

/// The rate-limit phase: nginx's `limit_req ... nodelay` per client address, before authentication, so password
/// guesses are capped too. The worker's `RateDecider` decides: one bucket per client across every loop and
/// connection, or across the fleet (then the exchange may wait for the decision; the runner holds its head).
final class RateLimiting: ConnectionPhase {
    /// The worker's: this process's limiter, or the fleet's.
    let decider: any RateDecider

    init?(config: ServerConfig, worker: Worker) {
        guard let decider = worker.rateDecider else { return nil }
        self.decider = decider
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        let later = Resumption(ex: ex, host: c, read: RateLimiting.read)
        return later.outcome(decider.decide(ex.client ?? c.peerHost, health: RateLimiting.isHealthRequest(ex, on: c),
                                            nowMillis: c.worker.loop.now / 1_000_000, later: later))
    }

    /// Whether `ex` is for the liveness or readiness path (decided at once, by this process).
    static func isHealthRequest(_ ex: Exchange, on c: ClientConnection) -> Bool {
        guard ex.method == .get || ex.method == .head else { return false }
        // The two fields only: a copy of the whole configuration retains each of its buffers.
        return ex.path == c.worker.config.healthPath || ex.path == c.worker.config.readyPath
    }

    /// The exchange's outcome for `verdict`.
    static func read(_ ex: Exchange, _ c: ClientConnection, _ verdict: RateVerdict) -> PhaseOutcome {
        switch verdict {
        case .decided(let decision, let source, let policy, let dryRun):
            return apply(ex, decision, source: source, dryRun: dryRun, headers: policy.headers(for: decision))
        case .open:
            ex.rateLimitResult = RateLimitResult(.pass, source: .open)
            return .next
        case .unlimited:
            return .next
        case .closed:
            ex.rateLimitResult = RateLimitResult(.unavailable, source: .closed)
            return .answer(ErrorResponse.sharedLimitsUnavailable, .rejected)
        }
    }

    /// Applies a per-IP decision, whoever made it (dry run included), noting it for the log with the part of the
    /// shared path that decided, if any (see `RateVerdict`).
    static func apply(_ ex: Exchange, _ decision: RateDecision, source: RateLimitResult.Source?, dryRun: Bool,
                      headers: @autoclosure () -> [(String, String)]) -> PhaseOutcome {
        guard case .rejected(let retryAfter, _) = decision else {
            ex.rateLimitResult = RateLimitResult(decision == .exempt ? .exempt : .pass, source: source)
            return .next
        }
        if dryRun {
            ex.rateLimited = true
            ex.rateLimitResult = RateLimitResult(.dryRun, source: source)
            return .next
        }
        ex.rateLimitResult = RateLimitResult(.rejected, source: source)
        return .answer(ErrorResponse(status: 429, message: "rate limit exceeded: retry in \(retryAfter) s",
                                     headers: headers()), .rateLimited)
    }
}
