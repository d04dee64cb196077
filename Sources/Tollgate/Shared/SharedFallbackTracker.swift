import TollgateIO

/// One worker's view of whether Redis answers: which of its limiters are in fallback, reported to the
/// process-wide `SharedLimitsStatus` on every change (which logs the first entry and the last exit). Loop thread only.
final class SharedFallbackTracker {
    /// This worker's connection.
    let client: RedisClient
    /// Process-wide fallback state, logs and metrics.
    let status: SharedLimitsStatus
    /// The policy while Redis is unavailable.
    let policy: SharedLimitsSettings.Fallback
    private var fallback: Set<SharedLimiterKind> = []
    private var wasUp = false

    /// Tracking for `client`, reporting to `status`, applying `policy`.
    init(client: RedisClient, status: SharedLimitsStatus, policy: SharedLimitsSettings.Fallback) {
        self.client = client
        self.status = status
        self.policy = policy
    }

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

    /// The connection's health changed. Back up: every fallback of this worker ends, with no request needed.
    func healthChanged(_ health: RedisHealth) {
        let isUp = health == .up
        if isUp != wasUp {
            wasUp = isUp
            status.workerConnection(up: isUp)
        }
        if isUp { endAll() }
    }

    /// The worker is closing: its connection and fallbacks no longer count.
    func closed() {
        if wasUp {
            wasUp = false
            status.workerConnection(up: false)
        }
        endAll()
    }

    private func endAll() {
        for kind in fallback { status.leaveFallback(kind) }
        fallback.removeAll()
    }
}
