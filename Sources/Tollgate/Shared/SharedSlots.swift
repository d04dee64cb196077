import TollgateIO

/// Inference slots across the fleet: a slot is a `SharedLeases` lease (per-user and global caps counted in Redis);
/// the wait queue stays local to this worker and FIFO, with the `queue` limit counted over the whole process.
///
/// Loop thread only. Other instances' releases are invisible here, so besides every local release the queue is
/// retried every `retryNanos`, head first (a waiter whose user is at its cap is skipped and keeps its place; a
/// global refusal ends the pass). While Redis is unavailable the `redis-fallback` policy decides: `local` takes
/// slots from a process-wide `ConcurrencyLimiter` at caps/N, `open` admits without a slot, `closed` refuses.
///
/// Every `Grant` handed out must come back through `release` exactly once, however its request ends.
final class SharedSlots {
    /// What a request holds while it runs.
    typealias Grant = SlotGrant

    /// The answer to `acquire`.
    enum Acquire {
        /// Go ahead; release the grant when the request ends.
        case granted(Grant)
        /// Waiting; exactly one of the waiter's callbacks will run unless `cancel` removes it first.
        case queued(ticket: UInt64)
        /// The queue is full: 429 with this Retry-After.
        case rejected(retryAfterSeconds: Int)
        /// Redis is unavailable and the policy is `closed`: 503.
        case unavailable
    }

    /// A request waiting for a slot, and what to call when its wait ends.
    struct Waiter {
        let ticket: UInt64
        let user: String
        /// The user's own cap (a `policy` line's `max-inflight`), nil for the configured one.
        let perUser: Int?
        let onGranted: (Grant) -> Void
        let onExpired: () -> Void
        let onUnavailable: () -> Void
    }

    /// How often the queue is retried for releases by other instances (and checked for timeouts).
    static let retryNanos: UInt64 = 50_000_000

    /// The leases in Redis (this worker's connection).
    let leases: SharedLeases
    /// Caps, queue size, queue timeout and Retry-After (the caps are the fleet's).
    let settings: ConcurrencyLimiter.Settings
    /// The `local` fallback: caps/N for the whole process; nil only in tests.
    let fallback: ConcurrencyLimiter?
    /// Requests queued over every worker, kept within `settings.queueLimit`.
    let queuedTotal: SharedCount
    /// Leases held by this process (all workers), for `tollgate_inference_in_flight`.
    let heldTotal: SharedCount
    /// Reports Redis answers and failures; knows the fallback policy.
    let owner: SharedFallbackTracker
    private var waiters = WaitQueue<Waiter>()
    private var nextTicket: UInt64 = 1
    private var retrying = false
    private var retryAgain = false
    private var ticking = false

    /// Slots through `leases`, queueing under `settings`, falling back to `fallback` as `tracker`'s policy says.
    init(leases: SharedLeases, settings: ConcurrencyLimiter.Settings, fallback: ConcurrencyLimiter?,
         queuedTotal: SharedCount, heldTotal: SharedCount, tracker: SharedFallbackTracker) {
        self.leases = leases
        owner = tracker
        self.settings = settings
        self.fallback = fallback
        self.queuedTotal = queuedTotal
        self.heldTotal = heldTotal
    }

    /// Tollgates sharing the Redis: a user's own cap (a `policy` line's) is shared by them, as the configured one
    /// is, while the local fallback decides.
    var fleetSize = 1

    /// A user's own cap as the local fallback applies it: cap/N rounded up, at least 1.
    private func fallbackShare(_ cap: Int) -> Int {
        max(1, (cap + fleetSize - 1) / max(1, fleetSize))
    }

    /// Requests waiting on this worker.
    var queuedHere: Int { waiters.count }

    /// Starts the heartbeats and the periodic retry. Loop thread only.
    func start() {
        leases.startHeartbeats()
        guard !ticking else { return }
        ticking = true
        scheduleTick()
    }

    /// Stops the heartbeats and the periodic retry. Loop thread only.
    func stop() {
        leases.stopHeartbeats()
        ticking = false
    }

    private func scheduleTick() {
        leases.client.loop.schedule(afterNanos: SharedSlots.retryNanos) { [weak self] in
            guard let self, self.ticking else { return }
            self.expire(now: self.leases.client.loop.now)
            self.retryWaiters()
            self.scheduleTick()
        }
    }

    /// A slot for `user` now, a place in the queue, or a refusal; `completion` may run before this returns (the
    /// fallback decides at once), else on the loop when Redis answers. The callbacks are the waiter's, if queued.
    func acquire(user: String, perUser: Int? = nil, onGranted: @escaping (Grant) -> Void,
                 onExpired: @escaping () -> Void, onUnavailable: @escaping () -> Void,
                 completion: @escaping (Acquire) -> Void) {
        let waiter = { [self] in
            makeWaiter(user: user, perUser: perUser, onGranted: onGranted, onExpired: onExpired,
                       onUnavailable: onUnavailable)
        }
        if !waiters.isEmpty {
            // Others wait here already: first come, first served (a pass tries the queue head first).
            completion(enqueue(waiter()))
            retryWaiters()
            return
        }
        if owner.isDown {
            owner.unavailable(.slots, owner.downError, counted: false)
            completion(fallbackAcquire(user: user, perUser: perUser, waiter: waiter))
            return
        }
        leases.acquire(user: user, perUser: perUser) { [self] result in
            switch result {
            case .acquired(let lease):
                owner.answered(.slots)
                heldTotal.increment()
                completion(.granted(.lease(lease)))
            case .userFull, .globalFull:
                owner.answered(.slots)
                completion(enqueue(waiter()))
            case .unavailable(let error):
                owner.unavailable(.slots, error)
                completion(fallbackAcquire(user: user, perUser: perUser, waiter: waiter))
            }
        }
    }

    /// Gives a grant back (call exactly once per grant) and lets waiters try again.
    func release(_ grant: Grant) {
        switch grant {
        case .lease(let lease):
            heldTotal.leave()
            leases.release(lease)
        case .local(let slot): fallback?.release(slot)
        case .open: break
        }
        retryWaiters()
    }

    /// Drops a waiter (its client went away); false when it was no longer waiting.
    @discardableResult
    func cancel(ticket: UInt64) -> Bool {
        take(ticket) != nil
    }

    private func makeWaiter(user: String, perUser: Int?, onGranted: @escaping (Grant) -> Void, onExpired: @escaping () -> Void,
                            onUnavailable: @escaping () -> Void) -> Waiter {
        defer { nextTicket &+= 1 }
        return Waiter(ticket: nextTicket, user: user, perUser: perUser, onGranted: onGranted, onExpired: onExpired,
                      onUnavailable: onUnavailable)
    }

    private func enqueue(_ waiter: Waiter) -> Acquire {
        // The per-user share is kept by each instance for its own queue (the queue itself is local and FIFO).
        guard waiters.count(where: { $0.user == waiter.user }) < settings.queuePerUser,
              queuedTotal.enter(limit: settings.queueLimit) else {
            return .rejected(retryAfterSeconds: max(1, settings.retryAfterSeconds))
        }
        waiters.append(waiter, ticket: waiter.ticket, now: leases.client.loop.now)
        return .queued(ticket: waiter.ticket)
    }

    /// Redis cannot answer for a new request: the policy decides.
    private func fallbackAcquire(user: String, perUser: Int?, waiter: () -> Waiter) -> Acquire {
        switch owner.policy {
        case .local:
            guard let fallback else { return .granted(.open) }
            if let slot = fallback.tryAcquire(user: user, perUser: perUser.map(fallbackShare)) { return .granted(.local(slot)) }
            return enqueue(waiter())
        case .open:
            return .granted(.open)
        case .closed:
            return .unavailable
        }
    }

    /// Times out waiters queued for `queueTimeoutMillis` or longer (429).
    func expire(now: UInt64) {
        for w in waiters.expire(now: now, timeout: settings.queueTimeoutMillis &* 1_000_000) {
            queuedTotal.leave()
            w.onExpired()
        }
    }

    /// Offers slots to the waiters, head first, one Redis call at a time; a pass already running runs once more.
    func retryWaiters() {
        guard !waiters.isEmpty else { return }
        if retrying {
            retryAgain = true
            return
        }
        retrying = true
        step(waiters.tickets[...], full: [])
    }

    private func finishPass() {
        retrying = false
        if retryAgain {
            retryAgain = false
            retryWaiters()
        }
    }

    /// One waiter of the pass: `tickets` still to try, `full` users found at their cap in this pass.
    private func step(_ tickets: ArraySlice<UInt64>, full: Set<String>) {
        var rest = tickets
        while let ticket = rest.popFirst() {
            guard let waiter = waiters.element(ticket: ticket), !full.contains(waiter.user) else { continue }
            if owner.isDown {
                owner.unavailable(.slots, owner.downError, counted: false)
                fallbackWaiters()
                finishPass()
                return
            }
            leases.acquire(user: waiter.user, perUser: waiter.perUser) { [self] result in
                switch result {
                case .acquired(let lease):
                    owner.answered(.slots)
                    // The waiter may have been cancelled or timed out while Redis answered.
                    if let w = take(ticket) {
                        heldTotal.increment()
                        w.onGranted(.lease(lease))
                    } else {
                        leases.release(lease)
                    }
                    step(rest, full: full)
                case .userFull:
                    owner.answered(.slots)
                    step(rest, full: full.union([waiter.user]))
                case .globalFull:
                    owner.answered(.slots)
                    finishPass()
                case .unavailable(let error):
                    owner.unavailable(.slots, error)
                    fallbackWaiters()
                    finishPass()
                }
            }
            return
        }
        finishPass()
    }

    /// Redis is unavailable with requests waiting: `local` grants what the local caps allow (FIFO, skipping users
    /// at their cap), `open` admits them all, `closed` refuses them all.
    private func fallbackWaiters() {
        switch owner.policy {
        case .local:
            guard let fallback else { return }
            for ticket in waiters.tickets {
                guard let w = waiters.element(ticket: ticket) else { continue }
                guard let slot = fallback.tryAcquire(user: w.user, perUser: w.perUser.map(fallbackShare)) else { continue }
                _ = take(ticket)
                w.onGranted(.local(slot))
            }
        case .open:
            while !waiters.isEmpty {
                let w = waiters.remove(at: 0)
                queuedTotal.leave()
                w.onGranted(.open)
            }
        case .closed:
            while !waiters.isEmpty {
                let w = waiters.remove(at: 0)
                queuedTotal.leave()
                w.onUnavailable()
            }
        }
    }

    /// Removes a waiter from the queue and returns it; nil if it is gone.
    private func take(_ ticket: UInt64) -> Waiter? {
        guard let waiter = waiters.take(ticket: ticket) else { return nil }
        queuedTotal.leave()
        return waiter
    }
}
