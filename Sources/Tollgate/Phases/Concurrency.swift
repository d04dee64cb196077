import TollgateHTTP
import TollgateIO

/// The concurrency phase of inference routes: at most K requests in flight per user and G overall, the rest waiting
/// in a bounded FIFO queue for a bounded time. A slot is released the instant its request ends, however it ends.
extension ClientConnection {
    /// Takes a slot, or queues (the connection waits without blocking), or refuses at once.
    func acquireSlot(_ ex: Exchange) -> PhaseResult {
        guard let limiter = worker.concurrency, ex.route == .inference else { return .proceed }
        if let slots = worker.shared?.slots { return acquireSharedSlot(ex, slots) }
        let user = ex.user ?? peerString
        let box = UncheckedBox((self, ex))
        let loop = worker.loop
        let result = limiter.acquire(user: user, nowMillis: loop.now / 1_000_000, onGranted: { slot in
            loop.execute { box.value.0.slotGranted(box.value.1, slot) }
        }, onExpired: {
            loop.execute { box.value.0.slotExpired(box.value.1) }
        })
        switch result {
        case .acquired(let slot):
            ex.slot = slot
            return .proceed
        case .queued(let ticket):
            ex.ticket = ticket
            return .wait
        case .rejected(let retryAfter):
            return .reject(busy(retryAfter, "the model is busy and the wait queue is full"), .rejected)
        }
    }

    private func slotGranted(_ ex: Exchange, _ slot: ConcurrencyLimiter.Slot) {
        guard phase == .exchange, exchange === ex else {
            worker.concurrency?.release(slot)
            return
        }
        ex.ticket = nil
        ex.slot = slot
        proxy(ex)
        if phase != .closed { readAvailable() }
    }

    func slotExpired(_ ex: Exchange) {
        guard phase == .exchange, exchange === ex else { return }
        ex.ticket = nil
        ex.sharedTicket = nil
        let seconds = worker.config.concurrency?.retryAfterSeconds ?? 5
        respond(ex, busy(seconds, "the model stayed busy for the whole wait"), reason: .rejected)
    }

    func busy(_ retryAfter: Int, _ message: String) -> ErrorResponse {
        ErrorResponse(status: 429, message: "\(message); retry in \(retryAfter) s", headers: [("Retry-After", String(retryAfter))])
    }

    /// Gives back the exchange's slot or place in the queue; called once whenever an exchange ends.
    func releaseAdmission(_ ex: Exchange) {
        if ex.bufferCharge > 0 {
            worker.bodyBudget.release(ex.bufferCharge, owner: bufferOwner(ex))
            ex.bufferCharge = 0
        }
        if worker.backends != nil { releaseBackend(ex) }
        guard let limiter = worker.concurrency else { return }
        if let slots = worker.shared?.slots { releaseSharedSlot(ex, slots) }
        if let slot = ex.slot {
            ex.slot = nil
            limiter.release(slot)
        }
        if let ticket = ex.ticket {
            ex.ticket = nil
            // False: the slot was granted meanwhile and its grant is on its way to `slotGranted`, which releases it.
            _ = limiter.cancel(ticket: ticket)
        }
    }
}
