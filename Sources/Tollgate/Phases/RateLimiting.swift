import TollgateHTTP
import TollgateIO

/// The rate-limit phase: nginx's `limit_req ... nodelay` per client address, before authentication, so password
/// guesses are capped too. One bucket per client across every loop and connection, or across the fleet with Redis
/// (`SharedRateLimiting.swift`).
extension ClientConnection {
    func rateLimit(_ ex: Exchange, head: RequestHead) -> PhaseResult {
        guard let limiter = worker.rateLimiter else { return .proceed }
        let client = ex.client ?? peerHost
        if let shared = worker.shared, let sharedRate = shared.rate, !isHealthRequest(ex) {
            return sharedRateLimit(ex, head: head, client: client, limiter: limiter, shared: shared, sharedRate: sharedRate)
        }
        let decision = limiter.check(client, nowMillis: worker.loop.now / 1_000_000)
        return applyRateDecision(ex, decision, source: nil, headers: limiter.headers(for: decision))
    }

    /// Applies a per-IP decision, whoever made it (dry run included). The log outcome is "pass", "exempt",
    /// "dry-run" or "rejected", with `:source` when the shared limiter's path decided ("redis", "cache", "local").
    func applyRateDecision(_ ex: Exchange, _ decision: RateDecision, source: String?,
                           headers: @autoclosure () -> [(String, String)]) -> PhaseResult {
        func outcome(_ base: String) -> String { source.map { base + ":" + $0 } ?? base }
        guard case .rejected(let retryAfter, _) = decision else {
            ex.rateLimitOutcome = outcome(decision == .exempt ? "exempt" : "pass")
            return .proceed
        }
        if worker.rateLimiter?.isDryRun == true {
            ex.rateLimited = true
            ex.rateLimitOutcome = outcome("dry-run")
            return .proceed
        }
        ex.rateLimitOutcome = outcome("rejected")
        return .reject(ErrorResponse(status: 429, message: "rate limit exceeded: retry in \(retryAfter) s",
                                     headers: headers()), .rateLimited)
    }

    /// Who the client is: the TCP peer, or the right-most untrusted X-Forwarded-For entry when the peer is a
    /// trusted proxy.
    func clientHost(_ head: RequestHead) -> SocketAddress.Host {
        let trusted = worker.config.trustedProxies
        guard !trusted.isEmpty else { return peerHost }
        var forwarded: [ArraySlice<UInt8>] = []
        for field in head.headers where field.kind == .xForwardedFor { forwarded.append(input[field.value]) }
        return ClientIdentity.resolve(peer: peerHost, forwardedFor: forwarded, trustedProxies: trusted)
    }
}
