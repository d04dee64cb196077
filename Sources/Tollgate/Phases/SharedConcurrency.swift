import TollgateHTTP
import TollgateIO

/// The concurrency phase with Redis: a slot is a fleet-wide lease, the queue is this worker's (FIFO, bounded,
/// timed out as without Redis). Taking a lease is asynchronous; the exchange waits without blocking and the client
/// may go away meanwhile: whatever is granted to an exchange that is gone is given straight back.
extension ClientConnection {
    /// Takes a lease, or queues (the exchange waits), or refuses; the first answer may come later, from Redis.
    func acquireSharedSlot(_ ex: Exchange, _ slots: SharedSlots) -> PhaseResult {
        let user = ex.user ?? peerString
        var immediate: SharedSlots.Acquire?
        var returned = false
        slots.acquire(user: user, onGranted: { [self] grant in
            sharedSlotGranted(ex, grant, slots)
        }, onExpired: { [self] in
            slotExpired(ex)
        }, onUnavailable: { [self] in
            guard phase == .exchange, exchange === ex else { return }
            ex.sharedTicket = nil
            respond(ex, ClientConnection.sharedLimitsUnavailable, reason: .rejected)
        }, completion: { [self] answer in
            guard returned else {
                immediate = answer
                return
            }
            sharedSlotAnswered(ex, answer, slots)
        })
        returned = true
        if let immediate { return applySharedSlot(ex, immediate) }
        return .wait
    }

    /// Redis answered the first acquire while the exchange waited.
    private func sharedSlotAnswered(_ ex: Exchange, _ answer: SharedSlots.Acquire, _ slots: SharedSlots) {
        guard phase == .exchange, exchange === ex else {
            switch answer {
            case .granted(let grant): slots.release(grant)
            case .queued(let ticket): slots.cancel(ticket: ticket)
            case .rejected, .unavailable: break
            }
            return
        }
        switch applySharedSlot(ex, answer) {
        case .proceed: proxy(ex)
        case .wait: break
        case .reject(let error, let reason): respond(ex, error, reason: reason)
        }
        if phase != .closed { readAvailable() }
    }

    private func applySharedSlot(_ ex: Exchange, _ answer: SharedSlots.Acquire) -> PhaseResult {
        switch answer {
        case .granted(let grant):
            ex.sharedGrant = grant
            return .proceed
        case .queued(let ticket):
            ex.sharedTicket = ticket
            return .wait
        case .rejected(let retryAfter):
            return .reject(busy(retryAfter, "the model is busy and the wait queue is full"), .rejected)
        case .unavailable:
            return .reject(ClientConnection.sharedLimitsUnavailable, .rejected)
        }
    }

    /// A queued exchange got its slot; back on the loop. The exchange may be gone: then the slot goes back.
    private func sharedSlotGranted(_ ex: Exchange, _ grant: SharedSlots.Grant, _ slots: SharedSlots) {
        guard phase == .exchange, exchange === ex, ex.sharedTicket != nil else {
            slots.release(grant)
            return
        }
        ex.sharedTicket = nil
        ex.sharedGrant = grant
        proxy(ex)
        if phase != .closed { readAvailable() }
    }

    /// Gives back the shared slot or the place in the queue; once, whenever an exchange ends.
    func releaseSharedSlot(_ ex: Exchange, _ slots: SharedSlots) {
        if let grant = ex.sharedGrant {
            ex.sharedGrant = nil
            slots.release(grant)
        }
        if let ticket = ex.sharedTicket {
            ex.sharedTicket = nil
            slots.cancel(ticket: ticket)
        }
    }
}
