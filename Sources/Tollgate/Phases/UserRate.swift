import TollgateHTTP

/// The per-user request rate (`user-rate`), once the user is known: 429 with the limiter's headers when exceeded.
/// A `policy` line's `rate=` replaces it for its user (`rate=off`: none for that user): one bucket per user whatever
/// rate applies, so a reload that changes a rate keeps what the user has used.
final class UserRate: ConnectionPhase {
    let limiter: UserRateLimiter
    /// The rate of users without a policy rate (`user-rate`, or the `*` line's), nil: none.
    let everyone: RatePolicy?
    /// Users whose own line sets a rate: theirs (nil: none).
    let own: [String: RatePolicy?]

    init?(config: ServerConfig, worker: Worker) {
        guard let limiter = worker.userRateLimiter else { return nil }
        let burst = config.userBurst
        func policy(_ rate: Double?) -> RatePolicy? {
            guard let rate, rate > 0 else { return nil }
            return RatePolicy(ratePerSecond: rate, burst: burst, name: "user")
        }
        let global = config.userRate.map { $0.rate }
        everyone = policy(config.policies.everyone.rate ?? global)
        var own: [String: RatePolicy?] = [:]
        for (user, line) in config.policies.lines {
            if let rate = line.rate { own[user] = policy(rate) }
        }
        self.own = own
        guard everyone != nil || own.values.contains(where: { $0 != nil }) else { return nil }
        self.limiter = limiter
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard let user = ex.user, let policy = own[user] ?? everyone else { return .next }
        let decision = limiter.check(user: user, nowMillis: c.worker.loop.now / 1_000_000, policy: policy)
        guard case .rejected(let retryAfter, _) = decision else { return .next }
        return .answer(ErrorResponse(status: 429, message: "request rate of user \(user) exceeded: retry in \(retryAfter) s",
                                     headers: policy.headers(for: decision)), .rateLimited)
    }
}
