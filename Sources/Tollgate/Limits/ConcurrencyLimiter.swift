import Synchronization

/// Per-user and global in-flight limits for inference routes, with a bounded FIFO wait queue and a wait timeout.
///
/// Ollama never pushes back (requests for a loaded model just queue on the GPU), so Tollgate does: at most
/// `perUser` requests in flight per user and `global` overall; the rest wait in one FIFO queue of `queueLimit`
/// places for up to `queueTimeoutMillis`, and a full queue is refused at once.
///
/// Thread-safe: one `Mutex` (the global count makes sharding pointless; this runs once per inference request, not
/// per byte). Callbacks run outside the lock on whichever thread caused them: `onGranted` on the thread that called
/// `release`, `onExpired` on the thread that called `expire`. They must hop to the request's own event loop.
/// `onGranted` may even run before `acquire` has returned `.queued` to its caller.
public final class ConcurrencyLimiter: Sendable {
    /// Limits and queue policy.
    public struct Settings: Sendable, Equatable {
        /// Requests in flight per user.
        public var perUser = 2
        /// Requests in flight overall.
        public var global = 4
        /// Requests waiting overall; one more is refused at once.
        public var queueLimit = 16
        /// Places in that queue one user may hold: one user's requests waiting on that user's own cap cannot fill
        /// the queue and turn everyone else away.
        public var queuePerUser = 4
        /// How long a request may wait before `expire` times it out.
        public var queueTimeoutMillis: UInt64 = 30_000
        /// The Retry-After suggested when the queue is full (and a sensible value for timed-out waiters too).
        public var retryAfterSeconds = 5
        /// Defaults: 2 per user, 4 overall, 16 waiting (4 per user), 30 s wait, Retry-After 5.
        public init() {}
    }

    /// A held in-flight slot; give it back with `release` exactly when the request ends (done, failed, or the
    /// client went away). Releasing twice is harmless.
    public struct Slot: Sendable, Hashable {
        /// Unique per limiter.
        let id: UInt64
        /// Whose slot it is.
        public let user: String
    }

    /// The outcome of `acquire`.
    public enum Acquire: Sendable {
        /// Go ahead; release the slot when done.
        case acquired(Slot)
        /// Wait: `onGranted` or `onExpired` will be called exactly once, unless `cancel(ticket:)` removes it first.
        case queued(ticket: UInt64)
        /// The queue is full: answer 429 with this Retry-After now.
        case rejected(retryAfterSeconds: Int)
    }

    private let state: Mutex<ConcurrencyState>

    /// A limiter with `settings`.
    public init(settings: Settings) {
        state = Mutex(ConcurrencyState(settings: settings))
    }

    /// Takes a slot for `user`, or queues the request, or refuses it when the queue is full.
    /// `perUser`: this user's own cap (a `policy` line's `max-inflight`), nil for `settings.perUser`.
    public func acquire(user: String, perUser: Int? = nil, nowMillis: UInt64, onGranted: @escaping @Sendable (Slot) -> Void,
                        onExpired: @escaping @Sendable () -> Void) -> Acquire {
        state.withLock { $0.acquire(user: user, cap: perUser, now: nowMillis, onGranted: onGranted, onExpired: onExpired) }
    }

    /// A slot for `user` now if both caps allow, else nil; never queues (the Redis fallback keeps its own queue).
    public func tryAcquire(user: String, perUser: Int? = nil) -> Slot? {
        state.withLock { $0.tryAcquire(user: user, cap: perUser) }
    }

    /// Frees `slot` at once and grants it to the next eligible waiter in FIFO order (a waiter whose user is at its
    /// per-user cap is skipped but keeps its place); that waiter's `onGranted` runs on this thread before returning.
    public func release(_ slot: Slot) {
        if let grant = state.withLock({ $0.release(slot) }) {
            grant.onGranted(grant.slot)
        }
    }

    /// Drops a waiting request (its client disconnected). Returns false if it was no longer waiting: then its
    /// `onGranted` has run or is running, and the caller must release that slot.
    @discardableResult
    public func cancel(ticket: UInt64) -> Bool {
        state.withLock { $0.cancel(ticket: ticket) }
    }

    /// Times out waiters queued for `queueTimeoutMillis` or more and calls their `onExpired` (answer 429).
    /// Call it periodically from each loop; whichever loop comes first fires the callbacks.
    public func expire(nowMillis: UInt64) {
        let expired = state.withLock { $0.expire(now: nowMillis) }
        for callback in expired { callback() }
    }

    /// Requests holding a slot.
    public var inFlight: Int { state.withLock { $0.inFlight } }

    /// Requests waiting.
    public var queued: Int { state.withLock { $0.waiters.count } }

    /// Slots held by `user`.
    public func inFlight(user: String) -> Int { state.withLock { $0.inFlight(user: user) } }
}
