import Synchronization
import TollgateIO

/// The Ollama backends shared by every event loop: per-backend in-flight counts and limits, model catalogs,
/// health, and one FIFO queue of requests waiting for a backend with room.
///
/// Thread-safe: one `Mutex` around `BackendSetState` (selection runs once per request, not per byte). Callbacks
/// run outside the lock on whichever thread caused them: `onGranted` on the thread that released a lease, marked a
/// backend healthy or updated a catalog; `onExpired` on the thread that called `expire`; `onUnservable` on the
/// thread that recorded the ejection or updated the catalog that left the waiter no backend. They must hop to the
/// request's own loop. Health changes are logged once each here (Diagnostics).
public final class BackendSet: Sendable {
    /// Each backend's address and Host header, in the configured order.
    public let addresses: [UpstreamAddress]
    private let state: Mutex<BackendSetState>

    /// A set of `config.upstreams` with their limits, the `queue`/`queue-timeout` wait policy and `health-fails`.
    public convenience init(config: ServerConfig) {
        self.init(backends: config.upstreams.indices.map { (config.upstreams[$0].address, config.backendLimit($0)) },
                  queueLimit: config.backendQueueLimit, queueTimeoutMillis: config.backendQueueTimeoutMillis,
                  failuresToEject: config.healthFails)
    }

    /// A set of backends (address, max in flight or nil for unlimited).
    public init(backends: [(UpstreamAddress, Int?)], queueLimit: Int, queueTimeoutMillis: UInt64, failuresToEject: Int) {
        addresses = backends.map(\.0)
        state = Mutex(BackendSetState(backends: backends.map { BackendState(name: $0.0.hostHeader, limit: $0.1) },
                                      queueLimit: queueLimit, queueTimeoutMillis: queueTimeoutMillis,
                                      failuresToEject: failuresToEject))
    }

    /// How many backends there are.
    public var count: Int { addresses.count }

    /// A backend for a request. `model` is the normalized model name the request needs (nil: any backend will do);
    /// `counted` requests (inference) count against the backend's max and may wait for room; `excluded` has bit i
    /// set for each backend this request already tried. A queued request gets `onUnservable` with `.unavailable` or
    /// `.noModel` (what it would get arriving then) as soon as an ejection or a catalog change leaves no backend
    /// that could serve it.
    public func acquire(model: String?, counted: Bool, excluded: UInt64, nowMillis: UInt64,
                        onGranted: @escaping @Sendable (BackendLease) -> Void,
                        onExpired: @escaping @Sendable () -> Void,
                        onUnservable: @escaping @Sendable (BackendChoice) -> Void) -> BackendChoice {
        state.withLock {
            $0.acquire(model: model, counted: counted, excluded: excluded, now: nowMillis, onGranted: onGranted,
                       onExpired: onExpired, onUnservable: onUnservable)
        }
    }

    /// Gives a lease back (harmless twice); a waiter that now fits is granted on this thread before returning.
    public func release(_ lease: BackendLease) {
        let grants = state.withLock { $0.release(lease) }
        for g in grants { g.onGranted(g.lease) }
    }

    /// Drops a waiter. False: it was granted meanwhile and its `onGranted` must release the lease.
    @discardableResult
    public func cancel(ticket: UInt64) -> Bool {
        state.withLock { $0.cancel(ticket: ticket) }
    }

    /// Times out waiters queued for the whole `queue-timeout` and calls their `onExpired`.
    public func expire(nowMillis: UInt64) {
        let expired = state.withLock { $0.expire(now: nowMillis) }
        for callback in expired { callback() }
    }

    /// A failed health check or proxied connection on backend `index`; logs an ejection once, and answers the
    /// waiters it leaves with no backend (their `onUnservable`, on this thread).
    @discardableResult
    public func recordFailure(_ index: Int, detail: String) -> BackendHealthEvent? {
        let (event, refusals) = state.withLock { s -> (BackendHealthEvent?, [BackendSetState.Refusal]) in
            let e = s.recordFailure(index)
            return (e, e == nil ? [] : s.refuseUnservable())
        }
        if case .ejected(let name, let failures)? = event {
            Diagnostics.warn("backend \(name) ejected after \(failures) consecutive failures (last: \(detail))")
        }
        for r in refusals { r.onUnservable(r.choice) }
        return event
    }

    /// A successful check or response on backend `index`; logs a recovery once and lets waiters use it.
    @discardableResult
    public func recordSuccess(_ index: Int) -> BackendHealthEvent? {
        let (event, grants) = state.withLock { s -> (BackendHealthEvent?, [BackendSetState.Grant]) in
            let e = s.recordSuccess(index)
            return (e, e == nil ? [] : s.grantWaiters())
        }
        if case .recovered(let name)? = event { Diagnostics.info("backend \(name) is healthy again") }
        for g in grants { g.onGranted(g.lease) }
        return event
    }

    /// New catalog facts for backend `index` (names normalized by `ModelName`; nil leaves that part unchanged).
    /// Waiters it lets in are granted, waiters no backend could serve any more are answered, on this thread.
    public func updateModels(_ index: Int, models: Set<String>?, loaded: Set<String>?) {
        let (grants, refusals) = state.withLock { s in
            s.updateModels(index, models: models, loaded: loaded)
            return (s.grantWaiters(), s.refuseUnservable())
        }
        for g in grants { g.onGranted(g.lease) }
        for r in refusals { r.onUnservable(r.choice) }
    }

    /// Backend `index`'s entries from its last readable `/api/tags` answer.
    func updateListing(_ index: Int, _ entries: [ModelEntry]) {
        state.withLock { $0.backends[index].listing = entries }
    }

    /// The model list to answer `/api/tags` and `/v1/models` with: the healthy backends' entries merged, or nil
    /// while no healthy backend's list has been read (then one backend answers, as for any other route).
    func modelListing() -> [ModelEntry]? {
        state.withLock { $0.modelListing() }
    }

    /// Counts a request moved to another backend before its response began.
    public func countFailover() {
        state.withLock { $0.failovers += 1 }
    }

    /// Whether at least one backend is healthy (readiness).
    public var anyHealthy: Bool { state.withLock { $0.anyHealthy(excluded: 0) } }

    /// Requests waiting for a backend.
    public var queued: Int { state.withLock { $0.waiters.count } }

    /// One backend's figures for metrics and tests.
    public struct Snapshot: Sendable, Equatable {
        /// Its Host form, "10.0.0.5:11434".
        public var name: String
        /// False while ejected.
        public var healthy: Bool
        /// Inference requests in flight on it.
        public var inFlight: Int
        /// Requests sent to it so far.
        public var requests: Int
        /// Times it was ejected.
        public var ejections: Int
        /// Its models (normalized), nil until the first successful poll.
        public var models: Set<String>?
        /// The models it has loaded (normalized).
        public var loaded: Set<String>
    }

    /// Every backend's figures, in the configured order.
    public var snapshot: [Snapshot] {
        state.withLock { s in
            s.backends.map { Snapshot(name: $0.name, healthy: $0.healthy, inFlight: $0.inFlight, requests: $0.requests,
                                      ejections: $0.ejections, models: $0.models, loaded: $0.loaded) }
        }
    }

    /// Requests moved to another backend so far.
    public var failovers: Int { state.withLock { $0.failovers } }
}
