/// The peers a worker proxies to, behind one interface whether there is one upstream or a backend set, as nginx's
/// upstream peer interface: `get` picks a peer for a request, `report` and `free` say how it went and give it back.
/// The proxy has one path; what differs is this type's policy.
///
/// A single upstream (no `max=`) is a set of one that keeps no books: `get` answers backend 0 at once, `report` and
/// `free` do nothing, requests are never kept for another peer. That path takes no lock and allocates nothing.
///
/// Loop thread of its worker; the `BackendSet` inside is shared by every worker and thread-safe.
struct UpstreamPeers {
    /// The callbacks of a request that waits for a peer; see `BackendSet.acquire`.
    struct Waiter {
        let nowMillis: UInt64
        let onGranted: @Sendable (BackendLease) -> Void
        let onExpired: @Sendable () -> Void
        let onUnservable: @Sendable (BackendChoice) -> Void
    }

    /// How a peer did, for its health.
    enum Outcome {
        /// The first response byte arrived.
        case answered
        /// Connecting, writing or reading failed before the response began.
        case failed(detail: String)
    }

    /// The backends with their limits, wait queue and health; nil for a single upstream without `max=`.
    let backendSet: BackendSet?

    /// One upstream: backend 0, no limit, no queue, no health bookkeeping.
    static let single = UpstreamPeers(backendSet: nil)

    /// The lease of the single upstream (nothing to give back).
    private static let singleLease = BackendLease(backend: 0, counted: false, id: 0)

    // MARK: policy

    /// Whether a request is kept whole until its first response byte, to be sent to another peer when one fails
    /// before answering: with a backend set, whenever the request was read whole.
    var keepsRequests: Bool { backendSet != nil }

    /// Whether a request body on `route` must be read whole before a peer is chosen (so that it can be sent again):
    /// with several backends every body but a blob upload (gigabytes). The model-deciding bodies are read whole
    /// whatever the peers (`BodyReading`).
    func readsBodyWhole(route: RouteClass) -> Bool {
        guard let backendSet, backendSet.count > 1 else { return false }
        return route != .blobs
    }

    /// Whether model lists (`/api/tags`, `/v1/models`) are answered from the backends' merged lists.
    var mergesModelLists: Bool { (backendSet?.count ?? 0) > 1 }

    // MARK: get / report / free

    /// A peer for a request: `model` as the request names it (nil: any peer), `counted` for inference (it counts
    /// against a backend's max and may wait), `excluded` bit i for each backend already tried. `waiter` is called
    /// only when a set decides, so the single upstream builds no callbacks.
    func get(model: String?, counted: Bool, excluded: UInt64, waiter: () -> Waiter) -> BackendChoice {
        guard let backendSet else { return excluded == 0 ? .acquired(UpstreamPeers.singleLease) : .unavailable }
        let w = waiter()
        return backendSet.acquire(model: model.map(ModelName.normalize), counted: counted, excluded: excluded,
                           nowMillis: w.nowMillis, onGranted: w.onGranted, onExpired: w.onExpired,
                           onUnservable: w.onUnservable)
    }

    /// Reports how backend `backend` did (its health); nothing for the single upstream.
    func report(_ backend: Int, _ outcome: Outcome) {
        guard let backendSet else { return }
        switch outcome {
        case .answered: backendSet.recordSuccess(backend)
        case .failed(let detail): backendSet.recordFailure(backend, detail: detail)
        }
    }

    /// Gives a lease back (harmless twice).
    func free(_ lease: BackendLease) {
        backendSet?.release(lease)
    }

    /// Drops a place in the wait queue. False: granted meanwhile, and the grant must be given back.
    func cancel(ticket: UInt64) -> Bool {
        backendSet?.cancel(ticket: ticket) ?? true
    }

    /// Counts a request moved to another backend before its response began.
    func countFailover() {
        backendSet?.countFailover()
    }

    // MARK: answers of the set's own

    /// The merged model list, or nil when the peers do not merge lists or no healthy backend's list is known.
    func modelListing() -> [ModelEntry]? {
        guard mergesModelLists else { return nil }
        return backendSet?.modelListing()
    }

    /// Whether some peer is healthy, where the peers keep health (a set); nil for the single upstream, whose
    /// readiness is a connect probe.
    var healthy: Bool? { backendSet?.anyHealthy }

    /// The access log's `backend` field: the backend's Host form with a set, nil for the single upstream.
    func logName(_ backend: Int?) -> String? {
        guard let backendSet, let backend else { return nil }
        return backendSet.addresses[backend].hostHeader
    }

    /// The per-backend metric series; empty for the single upstream.
    func metricsText() -> String {
        backendSet?.prometheusText() ?? ""
    }
}
