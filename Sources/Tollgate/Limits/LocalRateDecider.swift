import TollgateIO

/// This process's per-client rate: one `RateLimiter` bucket per client across every loop, decided at once.
struct LocalRateDecider: RateDecider {
    /// Shared by every loop of the process.
    let limiter: RateLimiter

    func decide(_ client: SocketAddress.Host, health: @autoclosure () -> Bool, nowMillis: UInt64,
                later: Resumption<RateVerdict>) -> NowOrLater<RateVerdict> {
        .now(.decided(limiter.check(client, nowMillis: nowMillis), source: nil, policy: limiter,
                      dryRun: limiter.isDryRun))
    }
}
