/// The bookkeeping behind `ConcurrencyLimiter`: counts, the FIFO wait queue, and who gets a freed slot.
///
/// A plain value with no locking and no callbacks invoked, so the policy can be tested step by step; the limiter
/// runs it under a `Mutex` and calls the returned callbacks after unlocking.
///
/// Invariant: every queued waiter is ineligible (global cap reached, or its user at the per-user cap). Freeing one
/// slot therefore makes at most one waiter eligible, and `release` grants at most one.
struct ConcurrencyState: Sendable {
    typealias Slot = ConcurrencyLimiter.Slot

    /// A request waiting for a slot.
    struct Waiter: Sendable {
        let user: String
        /// Its user's cap (a `policy` line's `max-inflight`, else `settings.perUser`).
        let cap: Int
        let onGranted: @Sendable (Slot) -> Void
        let onExpired: @Sendable () -> Void
    }

    /// A waiter that has just been given a slot; call `onGranted(slot)` outside the lock.
    struct Grant: Sendable {
        let slot: Slot
        let onGranted: @Sendable (Slot) -> Void
    }

    let settings: ConcurrencyLimiter.Settings
    private(set) var inFlight = 0
    private var perUser: [String: Int] = [:]
    private var active: Set<UInt64> = []
    private(set) var waiters: WaitQueue<Waiter>
    private var nextID: UInt64 = 1

    init(settings: ConcurrencyLimiter.Settings) {
        self.settings = settings
        waiters = WaitQueue(reservingCapacity: settings.queueLimit)
    }

    /// Slots held by `user`.
    func inFlight(user: String) -> Int { perUser[user] ?? 0 }

    private func eligible(_ user: String, _ cap: Int) -> Bool {
        inFlight < settings.global && (perUser[user] ?? 0) < cap
    }

    private mutating func grant(_ user: String) -> Slot {
        let slot = Slot(id: nextID, user: user)
        nextID &+= 1
        inFlight += 1
        perUser[user, default: 0] += 1
        active.insert(slot.id)
        return slot
    }

    /// A slot now, a place in the queue, or a refusal when the queue is full.
    /// `cap`: the user's own cap (a `policy` line's), nil for `settings.perUser`.
    mutating func acquire(user: String, cap: Int? = nil, now: UInt64, onGranted: @escaping @Sendable (Slot) -> Void,
                          onExpired: @escaping @Sendable () -> Void) -> ConcurrencyLimiter.Acquire {
        let cap = cap ?? settings.perUser
        if eligible(user, cap) { return .acquired(grant(user)) }
        guard waiters.count < settings.queueLimit,
              waiters.count(where: { $0.user == user }) < settings.queuePerUser else {
            return .rejected(retryAfterSeconds: max(1, settings.retryAfterSeconds))
        }
        let ticket = nextID
        nextID &+= 1
        waiters.append(Waiter(user: user, cap: cap, onGranted: onGranted, onExpired: onExpired), ticket: ticket, now: now)
        return .queued(ticket: ticket)
    }

    /// A slot now if `user` is eligible, else nil (nothing queued).
    mutating func tryAcquire(user: String, cap: Int? = nil) -> Slot? {
        eligible(user, cap ?? settings.perUser) ? grant(user) : nil
    }

    /// Frees `slot` (a second release of the same slot is ignored) and hands it to the first eligible waiter.
    mutating func release(_ slot: Slot) -> Grant? {
        guard active.remove(slot.id) != nil else { return nil }
        inFlight -= 1
        if let n = perUser[slot.user], n > 1 { perUser[slot.user] = n - 1 } else { perUser[slot.user] = nil }
        // The freed slot goes to the eligible waiter whose user has the fewest requests in flight, the longest-waiting
        // among those: a user with many queued requests takes turns with the others instead of going first each
        // time. A waiter whose user is at its cap is skipped and keeps its place.
        var best: (index: Int, inFlight: Int)?
        var position = 0
        while let i = waiters.firstIndex(after: position, where: { eligible($0.user, $0.cap) }) {
            let n = perUser[waiters.element(at: i).user] ?? 0
            if best == nil || n < best!.inFlight { best = (i, n) }
            if n == 0 { break }
            position = i + 1
        }
        guard let i = best?.index else { return nil }
        let waiter = waiters.remove(at: i)
        return Grant(slot: grant(waiter.user), onGranted: waiter.onGranted)
    }

    /// Removes a waiting ticket; false if it is not waiting (already granted, expired or cancelled).
    mutating func cancel(ticket: UInt64) -> Bool {
        waiters.cancel(ticket: ticket)
    }

    /// Removes waiters queued for `queueTimeoutMillis` or longer and returns their `onExpired` callbacks.
    mutating func expire(now: UInt64) -> [@Sendable () -> Void] {
        waiters.expire(now: now, timeout: settings.queueTimeoutMillis).map(\.onExpired)
    }
}
