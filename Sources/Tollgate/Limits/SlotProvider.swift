/// Hands out inference slots for the `Concurrency` phase, with a bounded FIFO wait queue: this process's
/// `ConcurrencyLimiter` (`LocalSlotProvider`) or fleet-wide leases (`SharedSlots`, which falls back to this
/// process's limiter while the leases cannot be taken). The worker picks one when it builds its phases.
/// Loop thread only.
protocol SlotProvider {
    /// A slot for `user`, a place in the queue, or a refusal: the first answer now or through `later`; a queued
    /// request's end of wait (`.waitOver`, `.expired`, `.unavailable`) always through `later`.
    /// `perUser`: the user's own cap (a `policy` line's `max-inflight`), nil for the configured one.
    func acquire(user: String, perUser: Int?, nowMillis: UInt64, later: Resumption<SlotAnswer>) -> NowOrLater<SlotAnswer>
    /// Gives a grant back: exactly once per grant, however its request ends.
    func release(_ grant: SlotGrant)
    /// Drops a place in the queue (its request ended). False when it no longer waited: a slot granted meanwhile
    /// reaches a resumption that finds its exchange gone, and gives the slot back.
    @discardableResult
    func cancel(ticket: UInt64) -> Bool
}

extension SlotProvider {
    /// Gives back what `answer` brought to an exchange that is gone: its slot, or its place in the queue.
    func giveBack(_ answer: SlotAnswer) {
        switch answer {
        case .granted(let grant), .waitOver(let grant): release(grant)
        case .queued(let ticket): cancel(ticket: ticket)
        case .rejected, .unavailable, .expired: break
        }
    }
}
