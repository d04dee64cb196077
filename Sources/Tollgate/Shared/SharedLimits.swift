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
    /// Process-wide fallback state, logs and metrics.
    let status: SharedLimitsStatus
    /// The per-IP limiter (the rate settings' rate and burst); nil when rate limiting is off.
    let rate: SharedRateLimiter?
    /// The per-IP rate while Redis is down (`local` fallback): rate/N, burst/N rounded up. Shared by all workers.
    let fallbackRate: RateLimiter?
    /// Fleet-wide inference slots; nil when concurrency limits are off.
    let slots: SharedSlots?
    private var fallback: Set<SharedLimiterKind> = []
    private var wasUp = false

    /// Everything for one worker on `loop`; nothing is sent before `start`.
    init(settings: SharedLimitsSettings, address: SocketAddress, loop: EventLoop, status: SharedLimitsStatus,
         rateSettings: RateLimitSettings?, fallbackRate: RateLimiter?, concurrency: ConcurrencyLimiter.Settings?,
         fallbackConcurrency: ConcurrencyLimiter?, queuedTotal: SharedQueueCount) {
        self.settings = settings
        self.status = status
        let client = RedisClient(configuration: settings.redis, address: address, loop: loop)
        self.client = client
        rate = rateSettings.map { SharedRateLimiter(client: client, settings: $0, keyPrefix: "tollgate:rl:") }
        self.fallbackRate = fallbackRate
        if let concurrency {
            var lease = SharedLeases.Settings()
            lease.perUser = concurrency.perUser
            lease.global = concurrency.global
            lease.leaseMillis = settings.slotLeaseMillis
            slots = SharedSlots(leases: SharedLeases(client: client, settings: lease), settings: concurrency,
                                fallback: fallbackConcurrency, queuedTotal: queuedTotal)
        } else {
            slots = nil
        }
        slots?.owner = self
    }

    /// Connects and starts the slot heartbeats and retries. Loop thread only.
    func start() {
        client.onHealthChange = { [unowned self] health in healthChanged(health) }
        client.start()
        slots?.start()
    }

    /// Stops the heartbeats and closes the connection (the worker has drained). Loop thread only.
    func close() {
        slots?.stop()
        client.close()
        if wasUp {
            wasUp = false
            status.workerConnection(up: false)
        }
        for kind in fallback { status.leaveFallback(kind) }
        fallback.removeAll()
    }

    /// The fallback policy in force while Redis is unavailable.
    var policy: SharedLimitsSettings.Fallback { settings.fallback }

    /// Whether calls would fail at once: skip Redis and apply the fallback directly.
    var isDown: Bool { client.health == .down }

    /// Why the connection is down, for the fallback's log line.
    var downError: RedisError { client.lastError ?? .notConnected }

    /// Redis answered a `kind` decision: that limiter's fallback (if any) ends.
    func answered(_ kind: SharedLimiterKind) {
        status.countCall(failed: false)
        if fallback.remove(kind) != nil { status.leaveFallback(kind) }
    }

    /// Redis could not answer a `kind` decision (`counted`: a call was made and failed; false when skipped because
    /// the connection is down): that limiter is in fallback until Redis answers again.
    func unavailable(_ kind: SharedLimiterKind, _ error: RedisError, counted: Bool = true) {
        if counted { status.countCall(failed: true) }
        if fallback.insert(kind).inserted { status.enterFallback(kind, policy: policy, error: error) }
    }

    private func healthChanged(_ health: RedisHealth) {
        let isUp = health == .up
        if isUp != wasUp {
            wasUp = isUp
            status.workerConnection(up: isUp)
        }
        // Back up: every fallback of this worker ends by itself, even with no request to notice it.
        if isUp {
            rate?.forgetDenials()
            for kind in fallback { status.leaveFallback(kind) }
            fallback.removeAll()
            slots?.retryWaiters()
        }
    }
}
