import TollgateHTTP
import TollgateIO

/// The rate-limit phase with Redis: the same decisions, headers, exemptions and dry run as the local limiter, but
/// one bucket per client across the fleet. The decision is asynchronous: the exchange waits without blocking (the
/// runner holds its head meanwhile) until Redis answers, then resumes on the loop; the client may have gone.
/// While Redis is unavailable the `redis-fallback` policy decides. Health paths never wait for Redis: they are
/// limited by the local limiter.
extension ClientConnection {
    /// Whether `ex` is for the liveness or readiness path (answered without depending on Redis).
    func isHealthRequest(_ ex: Exchange) -> Bool {
        guard ex.method == .get || ex.method == .head else { return false }
        let config = worker.config
        return ex.path == config.healthPath || ex.path == config.readyPath
    }

    /// The shared decision for `client` (exemptions first, locally); `.wait` until Redis answers.
    func sharedRateLimit(_ ex: Exchange, client: SocketAddress.Host, limiter: RateLimiter, shared: SharedLimits,
                         sharedRate: SharedRateLimiter) -> PhaseOutcome {
        guard let key = limiter.key(for: client) else {
            ex.rateLimitOutcome = "exempt"
            return .next
        }
        if shared.isDown { return rateFallback(ex, client: client, shared: shared, error: shared.downError, counted: false) }
        // The "denied until" cache answers inside `check`; Redis answers later, on this loop.
        var immediate: SharedRateOutcome?
        var returned = false
        sharedRate.check(key) { [self] outcome in
            guard returned else {
                immediate = outcome
                return
            }
            sharedRateDecided(ex, outcome, client: client, shared: shared)
        }
        returned = true
        if let immediate { return applySharedRate(ex, immediate, source: "cache", client: client, shared: shared) }
        return .wait
    }

    /// Redis answered (or failed) while the exchange waited.
    private func sharedRateDecided(_ ex: Exchange, _ outcome: SharedRateOutcome, client: SocketAddress.Host,
                                   shared: SharedLimits) {
        switch outcome {
        case .decided: shared.answered(.rate)
        case .unavailable(let error): shared.unavailable(.rate, error)
        }
        ex.phases.resume(ex, on: self) {
            applySharedRate(ex, outcome, source: "redis", client: client, shared: shared)
        }
    }

    private func applySharedRate(_ ex: Exchange, _ outcome: SharedRateOutcome, source: String, client: SocketAddress.Host,
                                 shared: SharedLimits) -> PhaseOutcome {
        switch outcome {
        case .decided(let decision):
            // The headers of the fleet-wide policy: the same rate and burst as the local limiter's.
            return RateLimiting.apply(ex, decision, source: source, dryRun: worker.rateLimiter?.isDryRun == true,
                                      headers: worker.rateLimiter?.headers(for: decision) ?? [])
        case .unavailable(let error):
            return rateFallback(ex, client: client, shared: shared, error: error, counted: false)
        }
    }

    /// Redis cannot decide: `local` limits at rate/N, `open` admits, `closed` refuses with 503.
    private func rateFallback(_ ex: Exchange, client: SocketAddress.Host, shared: SharedLimits, error: RedisError,
                              counted: Bool) -> PhaseOutcome {
        if !counted { shared.unavailable(.rate, error, counted: false) }
        switch shared.policy {
        case .local:
            guard let local = shared.fallbackRate else { return .next }
            let decision = local.check(client, nowMillis: worker.loop.now / 1_000_000)
            return RateLimiting.apply(ex, decision, source: "local", dryRun: worker.rateLimiter?.isDryRun == true,
                                      headers: local.headers(for: decision))
        case .open:
            ex.rateLimitOutcome = "pass:open"
            return .next
        case .closed:
            ex.rateLimitOutcome = "unavailable:closed"
            return .answer(ClientConnection.sharedLimitsUnavailable, .rejected)
        }
    }

    /// The 503 of `redis-fallback closed`.
    static let sharedLimitsUnavailable = ErrorResponse(status: 503, message: "shared limits unavailable",
                                                        headers: [("Retry-After", "1")])
}
