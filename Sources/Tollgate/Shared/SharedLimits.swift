import TollgateIO

/// One worker's side of the Redis-shared limits: its `RedisClient`, the shared per-IP and failed-login limiters,
/// the inference slot leases, and the local limiters the `local` fallback uses. Loop thread only.
///
/// Created by `Server` when `redis` is set; `start` connects (on the loop), `close` disconnects when the worker
/// has drained. Each limiter reports here whether Redis answered, so fallback is entered and left per limiter and
/// logged once per process through `status`.
final class SharedLimits {
    /// The settings in force.
    let settings: SharedLimitsSettings
    /// This worker's connection.
    let client: RedisClient
    /// Which limiters of this worker are in fallback.
    let tracker: SharedFallbackTracker
    /// The per-IP limiter (the rate settings' rate and burst); nil when rate limiting is off.
    let rate: SharedRateLimiter?
    /// The per-IP rate while Redis is down (`local` fallback): rate/N, burst/N rounded up. Shared by all workers.
    let fallbackRate: RateLimiter?
    /// The fleet-wide failed-login throttle; nil when authentication or its throttle is off.
    let login: SharedLoginThrottle?
    /// Fleet-wide inference slots; nil when concurrency limits are off.
    let slots: SharedSlots?
    /// Fleet-wide token and request balances; nil when the process keeps no quota book.
    let quotas: SharedQuotas?

    /// Everything for one worker on `loop`; nothing is sent before `start`. `rateDenials` and `loginDenials` are the
    /// process's "denied until" caches of the per-IP limiter and the login throttle, shared by all its workers.
    init(settings: SharedLimitsSettings, address: SocketAddress, loop: EventLoop, status: SharedLimitsStatus,
         rateSettings: RateLimitSettings?, fallbackRate: RateLimiter?, authSettings: Authenticator.Settings?,
         concurrency: ConcurrencyLimiter.Settings?,
         fallbackConcurrency: ConcurrencyLimiter?, queuedTotal: SharedCount, heldTotal: SharedCount,
         rateDenials: SharedDenials = SharedDenials(), loginDenials: SharedDenials = SharedDenials(),
         quotaBook: QuotaBook? = nil, fleetMember: String? = nil) {
        self.settings = settings
        let client = RedisClient(configuration: settings.redis, address: address, loop: loop)
        self.client = client
        let tracker = SharedFallbackTracker(client: client, status: status, policy: settings.fallback)
        self.tracker = tracker
        rate = rateSettings.map {
            SharedRateLimiter(client: client, settings: $0, keyPrefix: "tollgate:rl:", denials: rateDenials)
        }
        self.fallbackRate = fallbackRate
        if let auth = authSettings, auth.failureLimit > 0 {
            login = SharedLoginThrottle(client: client, limit: auth.failureLimit, windowSeconds: auth.failureWindowSeconds,
                                        denials: loginDenials)
        } else {
            login = nil
        }
        if let concurrency {
            var lease = SharedLeases.Settings()
            lease.perUser = concurrency.perUser
            lease.global = concurrency.global
            lease.leaseMillis = settings.slotLeaseMillis
            let fleetSlots = SharedSlots(leases: SharedLeases(client: client, settings: lease), settings: concurrency,
                                         fallback: fallbackConcurrency, queuedTotal: queuedTotal,
                                         heldTotal: heldTotal, tracker: tracker)
            fleetSlots.fleetSize = settings.fleetSize
            slots = fleetSlots
        } else {
            slots = nil
        }
        var quota = SharedQuotas.Settings()
        quota.leaseMillis = settings.slotLeaseMillis
        quotas = quotaBook.map {
            let quotas = SharedQuotas(client: client, settings: quota, clock: $0.clock, member: fleetMember, book: $0)
            quotas.status = status
            return quotas
        }
    }

    /// Connects and starts the slot heartbeats and retries. Loop thread only.
    func start() {
        client.onHealthChange = { [unowned self] health in healthChanged(health) }
        client.start()
        slots?.start()
        quotas?.startHeartbeats()
    }

    /// Stops the heartbeats and closes the connection (the worker has drained). Loop thread only.
    func close() {
        slots?.stop()
        quotas?.stopHeartbeats()
        client.close()
        tracker.closed()
    }

    /// As `close`, once the commands already queued (the last slot releases of a drain) have been answered or
    /// have timed out; then `done`. Loop thread only.
    func closeWhenAnswered(_ done: @escaping () -> Void) {
        slots?.stop()
        quotas?.stopHeartbeats()
        let loop = client.loop
        let deadline = loop.now &+ (settings.redis.commandTimeoutMillis &+ 100) &* 1_000_000
        func check() {
            if client.pendingCount == 0 || loop.now >= deadline {
                close()
                done()
            } else {
                loop.schedule(afterNanos: 5_000_000) { check() }
            }
        }
        check()
    }

    /// Process-wide fallback state, logs and metrics.
    var status: SharedLimitsStatus { tracker.status }

    /// The fallback policy in force while Redis is unavailable.
    var policy: SharedLimitsSettings.Fallback { tracker.policy }

    /// Whether calls would fail at once: skip Redis and apply the fallback directly.
    var isDown: Bool { tracker.isDown }

    /// Why the connection is down, for the fallback's log line.
    var downError: RedisError { tracker.downError }

    /// Redis answered a `kind` decision: that limiter's fallback (if any) ends.
    func answered(_ kind: SharedLimiterKind) { tracker.answered(kind) }

    /// Redis could not answer a `kind` decision; see `SharedFallbackTracker.unavailable`.
    func unavailable(_ kind: SharedLimiterKind, _ error: RedisError, counted: Bool = true) {
        tracker.unavailable(kind, error, counted: counted)
    }

    private func healthChanged(_ health: RedisHealth) {
        tracker.healthChanged(health)
        if health == .up {
            // Redis may have restarted empty: cached denials could outlive the state they came from. The caches are
            // the process's: this empties them for every worker, which only costs calls.
            rate?.forgetDenials()
            login?.limiter.forgetDenials()
            slots?.retryWaiters()
            // Settlements made while Redis was away: the users spent those tokens.
            quotas?.retryUnsettled()
        }
    }
}
