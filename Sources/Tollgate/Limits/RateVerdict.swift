/// What a `RateDecider` decided for one request.
enum RateVerdict {
    /// A bucket decided. `source` names the part of the shared path that did (Redis, the cached rejection, the
    /// local fallback), nil for this process's own limiter; `policy` renders the 429's headers; with `dryRun` a
    /// rejection is only logged.
    case decided(RateDecision, source: RateLimitResult.Source?, policy: RateLimiter, dryRun: Bool)
    /// The shared limits cannot answer and their fallback admits everything: logged as `pass:open`.
    case open
    /// The shared limits cannot answer and there is no local limiter to fall back to: admitted, nothing logged.
    case unlimited
    /// The shared limits cannot answer and their fallback refuses: 503.
    case closed
}
