import TollgateHTTP

/// The per-user request rate (`user-rate`), once the user is known: 429 with the limiter's headers when exceeded.
struct UserRate: ConnectionPhase {
    let limiter: UserRateLimiter

    init?(config: ServerConfig, worker: Worker) {
        guard let limiter = worker.userRateLimiter else { return nil }
        self.limiter = limiter
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard let user = ex.user else { return .next }
        let decision = limiter.check(user: user, nowMillis: c.worker.loop.now / 1_000_000)
        guard case .rejected(let retryAfter, _) = decision else { return .next }
        return .answer(ErrorResponse(status: 429, message: "request rate of user \(user) exceeded: retry in \(retryAfter) s",
                                     headers: limiter.headers(for: decision)), .rateLimited)
    }
}
