/// The backend set's state and every decision on it: selection, the FIFO wait queue, health. Pure (no clock of its
/// own, no I/O), so it is tested directly; `BackendSet` wraps it in a lock.
struct BackendSetState {
    struct Waiter {
        let model: String?
        let excluded: UInt64
        let onGranted: @Sendable (BackendLease) -> Void
        let onExpired: @Sendable () -> Void
        let onUnservable: @Sendable (BackendChoice) -> Void
    }

    /// A waiter left with no healthy backend that could serve it, and its callback, to run outside the lock.
    struct Refusal {
        /// `.unavailable` or `.noModel`: what a request arriving now would get.
        let choice: BackendChoice
        let onUnservable: @Sendable (BackendChoice) -> Void
    }

    /// A waiter's lease and its callback, to run outside the lock.
    struct Grant {
        let lease: BackendLease
        let onGranted: @Sendable (BackendLease) -> Void
    }

    var backends: [BackendState]
    var waiters = WaitQueue<Waiter>()
    let queueLimit: Int
    let queueTimeoutMillis: UInt64
    let failuresToEject: Int
    private var nextID: UInt64 = 1
    /// Where the round-robin among equally good backends starts next.
    private var cursor = 0
    var failovers = 0
    /// Leases given out and not yet released (a second release of the same lease changes nothing).
    private var outstanding: Set<UInt64> = []

    init(backends: [BackendState], queueLimit: Int, queueTimeoutMillis: UInt64, failuresToEject: Int) {
        self.backends = backends
        self.queueLimit = queueLimit
        self.queueTimeoutMillis = queueTimeoutMillis
        self.failuresToEject = max(1, failuresToEject)
    }

    // MARK: selection

    /// The backend to use, if one is free: healthy, not in `excluded` (bit i: backend i), able to serve `model`
    /// (nil: any); for counted requests also below its max. Then one where the model is loaded, then the least
    /// loaded, ties in round-robin order.
    func pick(model: String?, counted: Bool, excluded: UInt64) -> Int? {
        var best: Int?
        var bestKey: (Int, Double, Int) = (0, 0, 0)
        let n = backends.count
        for step in 0..<n {
            let i = (cursor + step) % n
            let b = backends[i]
            guard b.healthy, excluded & (1 << UInt64(i)) == 0, b.mayServe(model) else { continue }
            if counted && !b.hasRoom { continue }
            let loaded = model.map { b.loaded.contains($0) } == true ? 0 : 1
            let key = (loaded, b.load, step)
            if best == nil || key < bestKey {
                best = i
                bestKey = key
            }
        }
        return best
    }

    /// Whether some healthy, untried backend could serve `model` once it has room.
    func couldServe(model: String?, excluded: UInt64) -> Bool {
        backends.indices.contains { i in
            backends[i].healthy && excluded & (1 << UInt64(i)) == 0 && backends[i].mayServe(model)
        }
    }

    /// Whether any healthy, untried backend is left at all.
    func anyHealthy(excluded: UInt64) -> Bool {
        backends.indices.contains { i in backends[i].healthy && excluded & (1 << UInt64(i)) == 0 }
    }

    private mutating func lease(_ i: Int, counted: Bool) -> BackendLease {
        if counted { backends[i].inFlight += 1 }
        backends[i].requests += 1
        cursor = (i + 1) % backends.count
        nextID &+= 1
        outstanding.insert(nextID)
        return BackendLease(backend: i, counted: counted, id: nextID)
    }

    /// Why no backend will ever serve `model` (minus `excluded`) as things stand: `.unavailable` when no healthy
    /// untried backend is left, `.noModel` when none of them has the model; nil while one could.
    func unservable(model: String?, excluded: UInt64) -> BackendChoice? {
        guard anyHealthy(excluded: excluded) else { return .unavailable }
        guard couldServe(model: model, excluded: excluded) else { return .noModel }
        return nil
    }

    /// A backend for a request: at once, or a place in the queue, or a refusal. A queued request ends in exactly
    /// one of its callbacks: `onGranted`, `onExpired` (queue-timeout), or `onUnservable` (an ejection or a catalog
    /// change left no backend that could serve it), unless it is cancelled first.
    mutating func acquire(model: String?, counted: Bool, excluded: UInt64, now: UInt64,
                          onGranted: @escaping @Sendable (BackendLease) -> Void,
                          onExpired: @escaping @Sendable () -> Void,
                          onUnservable: @escaping @Sendable (BackendChoice) -> Void) -> BackendChoice {
        if let i = pick(model: model, counted: counted, excluded: excluded) {
            // Earlier waiters that this backend could serve keep their turn (FIFO).
            if !counted || !waiters.contains(where: { pick(model: $0.model, counted: true, excluded: $0.excluded) == i }) {
                return .acquired(lease(i, counted: counted))
            }
        }
        if let refusal = unservable(model: model, excluded: excluded) { return refusal }
        // Not counted and nothing picked can only mean no backend may serve the model: answered above.
        guard counted, waiters.count < queueLimit else { return .rejected(retryAfterSeconds: 5) }
        nextID &+= 1
        waiters.append(Waiter(model: model, excluded: excluded, onGranted: onGranted, onExpired: onExpired,
                              onUnservable: onUnservable),
                       ticket: nextID, now: now)
        return .queued(ticket: nextID)
    }

    /// Gives a lease back and hands freed room to waiters.
    mutating func release(_ lease: BackendLease) -> [Grant] {
        guard outstanding.remove(lease.id) != nil else { return [] }
        if lease.counted { backends[lease.backend].inFlight = max(0, backends[lease.backend].inFlight - 1) }
        return grantWaiters()
    }

    /// Grants every waiter that can be served now, in FIFO order (one that cannot keeps its place).
    mutating func grantWaiters() -> [Grant] {
        var grants: [Grant] = []
        var k = 0
        while k < waiters.count {
            let w = waiters[k]
            if let i = pick(model: w.model, counted: true, excluded: w.excluded) {
                waiters.remove(at: k)
                grants.append(Grant(lease: lease(i, counted: true), onGranted: w.onGranted))
            } else {
                k += 1
            }
        }
        return grants
    }

    /// Removes the waiters that no healthy backend could serve any more (after an ejection or a catalog change),
    /// in FIFO order, with what each would get if it arrived now.
    mutating func refuseUnservable() -> [Refusal] {
        var refusals: [Refusal] = []
        while let k = waiters.firstIndex(where: { unservable(model: $0.model, excluded: $0.excluded) != nil }) {
            let w = waiters[k]
            let choice = unservable(model: w.model, excluded: w.excluded) ?? .unavailable
            waiters.remove(at: k)
            refusals.append(Refusal(choice: choice, onUnservable: w.onUnservable))
        }
        return refusals
    }

    /// Drops a waiter; false when it was no longer waiting (its grant is on its way and must be released).
    mutating func cancel(ticket: UInt64) -> Bool {
        waiters.cancel(ticket: ticket)
    }

    /// Removes the waiters queued for the whole timeout and returns their callbacks.
    mutating func expire(now: UInt64) -> [@Sendable () -> Void] {
        waiters.expire(now: now, timeout: queueTimeoutMillis).map(\.onExpired)
    }

    // MARK: health

    /// A failed check or proxied connection: ejects the backend at the threshold.
    mutating func recordFailure(_ i: Int) -> BackendHealthEvent? {
        backends[i].failures += 1
        guard backends[i].healthy, backends[i].failures >= failuresToEject else { return nil }
        backends[i].healthy = false
        backends[i].ejections += 1
        return .ejected(name: backends[i].name, failures: backends[i].failures)
    }

    /// A successful check (or proxied response): resets the count; brings an ejected backend back.
    mutating func recordSuccess(_ i: Int) -> BackendHealthEvent? {
        backends[i].failures = 0
        guard !backends[i].healthy else { return nil }
        backends[i].healthy = true
        return .recovered(name: backends[i].name)
    }

    /// New catalog facts from a poll (nil leaves that part unchanged).
    mutating func updateModels(_ i: Int, models: Set<String>?, loaded: Set<String>?) {
        if let models { backends[i].models = models }
        if let loaded { backends[i].loaded = loaded }
    }

    /// The model list Tollgate answers: the healthy backends' last `/api/tags` entries merged (see
    /// `ModelListing.merge`); nil while no healthy backend's list has been read.
    func modelListing() -> [ModelEntry]? {
        let lists = backends.compactMap { $0.healthy ? $0.listing : nil }
        return lists.isEmpty ? nil : ModelListing.merge(lists)
    }
}
