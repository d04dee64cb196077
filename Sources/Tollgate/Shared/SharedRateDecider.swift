import TollgateIO

/// The per-client rate across the fleet: the same decisions, headers, exemptions and dry run as this process's
/// limiter, but one bucket per client in Redis. A rejection cached in the process answers at once (source
/// "cache"); otherwise Redis answers later, on the loop (source "redis"). While Redis is unavailable the
/// `redis-fallback` policy decides: `local` limits at rate/N (source "local"), `open` admits, `closed` refuses.
/// Health paths never wait for Redis: this process's limiter decides them. Loop thread only.
struct SharedRateDecider: RateDecider {
    /// This process's limiter: exemptions, keys, headers, dry run, and the health paths' decisions.
    let local: RateLimiter
    /// This worker's side of the shared limits (connection, fallback state, fallback limiter).
    let limits: SharedLimits
    /// The fleet-wide buckets.
    let rate: SharedRateLimiter

    func decide(_ client: SocketAddress.Host, health: @autoclosure () -> Bool, nowMillis: UInt64,
                later: Resumption<RateVerdict>) -> NowOrLater<RateVerdict> {
        if health() {
            return LocalRateDecider(limiter: local).decide(client, health: true, nowMillis: nowMillis, later: later)
        }
        guard let key = local.key(for: client) else { return .now(decided(.exempt, source: nil)) }
        if limits.isDown { return .now(fallback(client, error: limits.downError)) }
        let limits = self.limits
        return NowOrLater<SharedRateOutcome>.asking({ rate.check(key, completion: $0) }, later: { outcome in
            switch outcome {
            case .decided: limits.answered(.rate)
            case .unavailable(let error): limits.unavailable(.rate, error)
            }
            later.resume(verdict(outcome, source: .redis, client: client))
        }).map { verdict($0, source: .cache, client: client) }
    }

    private func verdict(_ outcome: SharedRateOutcome, source: RateLimitResult.Source, client: SocketAddress.Host) -> RateVerdict {
        switch outcome {
        case .decided(let decision): return decided(decision, source: source)
        case .unavailable(let error): return fallback(client, error: error)
        }
    }

    /// A decision with the headers of the fleet-wide policy: the same rate and burst as this process's limiter.
    private func decided(_ decision: RateDecision, source: RateLimitResult.Source?) -> RateVerdict {
        .decided(decision, source: source, policy: local, dryRun: local.isDryRun)
    }

    /// Redis cannot decide: `local` limits at rate/N, `open` admits, `closed` refuses with 503.
    private func fallback(_ client: SocketAddress.Host, error: RedisError) -> RateVerdict {
        limits.unavailable(.rate, error, counted: false)
        switch limits.policy {
        case .local:
            guard let fallback = limits.fallbackRate else { return .unlimited }
            let decision = fallback.check(client, nowMillis: limits.client.loop.now / 1_000_000)
            return .decided(decision, source: .local, policy: fallback, dryRun: local.isDryRun)
        case .open:
            return .open
        case .closed:
            return .closed
        }
    }
}
