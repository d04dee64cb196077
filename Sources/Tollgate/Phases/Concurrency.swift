import TollgateHTTP
import TollgateIO

/// The concurrency phase of inference routes: at most K requests in flight per user and G overall, the rest waiting
/// in a bounded FIFO queue for a bounded time (the exchange waits for its slot). With Redis a slot is a fleet-wide
/// lease (`SharedConcurrency.swift`). A slot is released the instant its request ends, however it ends
/// (`ClientConnection.releaseAdmission`).
struct Concurrency: ConnectionPhase {
    let limiter: ConcurrencyLimiter
    /// The fleet-wide slots with Redis; nil without.
    let shared: SharedSlots?

    init?(config: ServerConfig, worker: Worker) {
        guard let limiter = worker.concurrency else { return nil }
        self.limiter = limiter
        shared = worker.shared?.slots
    }

    /// Takes a slot, or queues (the exchange waits without blocking), or refuses at once.
    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard ex.route == .inference else { return .next }
        if let shared { return c.acquireSharedSlot(ex, shared) }
        let user = ex.user ?? c.peerString
        let box = UncheckedBox((c, ex, limiter))
        let loop = c.worker.loop
        let result = limiter.acquire(user: user, nowMillis: loop.now / 1_000_000, onGranted: { slot in
            loop.execute {
                let (c, ex, limiter) = box.value
                ex.phases.resume(ex, on: c, ifGone: { limiter.release(slot) }) {
                    ex.ticket = nil
                    ex.slot = slot
                    return .next
                }
            }
        }, onExpired: {
            loop.execute {
                let (c, ex, _) = box.value
                ex.phases.resume(ex, on: c) { Concurrency.expired(ex, on: c) }
            }
        })
        switch result {
        case .acquired(let slot):
            ex.slot = slot
            return .next
        case .queued(let ticket):
            ex.ticket = ticket
            return .wait
        case .rejected(let retryAfter):
            return .answer(Concurrency.busy(retryAfter, "the model is busy and the wait queue is full"), .rejected)
        }
    }

    /// The wait in the queue timed out: 429.
    static func expired(_ ex: Exchange, on c: ClientConnection) -> PhaseOutcome {
        ex.ticket = nil
        ex.sharedTicket = nil
        let seconds = c.worker.config.concurrency?.retryAfterSeconds ?? 5
        return .answer(busy(seconds, "the model stayed busy for the whole wait"), .rejected)
    }

    /// 429 with Retry-After.
    static func busy(_ retryAfter: Int, _ message: String) -> ErrorResponse {
        ErrorResponse(status: 429, message: "\(message); retry in \(retryAfter) s", headers: [("Retry-After", String(retryAfter))])
    }
}
