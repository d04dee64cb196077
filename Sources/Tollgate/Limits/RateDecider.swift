import TollgateIO

/// Decides the per-client request rate for the `RateLimiting` phase: this process's buckets (`LocalRateDecider`)
/// or the fleet's (`SharedRateDecider`, which falls back to this process's own while the fleet's cannot answer).
/// The worker picks one when it builds its phases. Loop thread only.
protocol RateDecider {
    /// Counts one request from `client` at `nowMillis`. `health`: the request is for the liveness or readiness path,
    /// which is always decided at once, by this process.
    func decide(_ client: SocketAddress.Host, health: @autoclosure () -> Bool, nowMillis: UInt64,
                later: Resumption<RateVerdict>) -> NowOrLater<RateVerdict>
}
