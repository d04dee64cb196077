import TollgateHTTP
import TollgateIO

/// The concurrency phase with Redis: a slot is a fleet-wide lease, the queue is this worker's (FIFO, bounded,
/// timed out as without Redis). Taking a lease is asynchronous; the exchange waits without blocking and the client
/// may go away meanwhile: whatever is granted to an exchange that is gone is given straight back.
extension ClientConnection {
    /// Takes a lease, or queues (the exchange waits), or refuses; the first answer may come later, from Redis.
    /// Every answer goes through the runner, which takes one given before `acquire` returns as this phase's: the
    /// queue place is recorded before a grant that the same call makes (the local fallback serves its queue at once).
    func acquireSharedSlot(_ ex: Exchange, _ slots: SharedSlots) -> PhaseOutcome {
        let user = ex.user ?? peerString
        slots.acquire(user: user, onGranted: { [self] grant in
            sharedSlotGranted(ex, grant, slots)
        }, onExpired: { [self] in
            ex.phases.resume(ex, on: self) { Concurrency.expired(ex, on: self) }
        }, onUnavailable: { [self] in
            ex.phases.resume(ex, on: self) {
                ex.sharedTicket = nil
                return .answer(ClientConnection.sharedLimitsUnavailable, .rejected)
            }
        }, completion: { [self] answer in
            sharedSlotAnswered(ex, answer, slots)
        })
        return .wait
    }

    /// The first acquire was answered: at once, or by Redis while the exchange waited.
    private func sharedSlotAnswered(_ ex: Exchange, _ answer: SharedSlots.Acquire, _ slots: SharedSlots) {
        ex.phases.resume(ex, on: self, ifGone: {
            switch answer {
            case .granted(let grant): slots.release(grant)
            case .queued(let ticket): slots.cancel(ticket: ticket)
            case .rejected, .unavailable: break
            }
        }) {
            applySharedSlot(ex, answer)
        }
    }

    private func applySharedSlot(_ ex: Exchange, _ answer: SharedSlots.Acquire) -> PhaseOutcome {
        switch answer {
        case .granted(let grant):
            ex.sharedGrant = grant
            return .next
        case .queued(let ticket):
            ex.sharedTicket = ticket
            return .wait
        case .rejected(let retryAfter):
            return .answer(Concurrency.busy(retryAfter, "the model is busy and the wait queue is full"), .rejected)
        case .unavailable:
            return .answer(ClientConnection.sharedLimitsUnavailable, .rejected)
        }
    }

    /// A queued exchange got its slot; back on the loop. The exchange may be gone: then the slot goes back.
    private func sharedSlotGranted(_ ex: Exchange, _ grant: SharedSlots.Grant, _ slots: SharedSlots) {
        ex.phases.resume(ex, on: self, ifGone: { slots.release(grant) }) {
            guard ex.sharedTicket != nil else {
                slots.release(grant)
                return .wait
            }
            ex.sharedTicket = nil
            ex.sharedGrant = grant
            return .next
        }
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
