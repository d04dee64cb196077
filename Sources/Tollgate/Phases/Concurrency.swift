import TollgateHTTP

/// The concurrency phase of inference routes: at most K requests in flight per user and G overall, the rest waiting
/// in a bounded FIFO queue for a bounded time (the exchange waits for its slot). The worker's `SlotProvider` hands
/// the slots out: this process's, or fleet-wide leases. A slot is released the instant its request ends, however it
/// ends (`ClientConnection.releaseAdmission`); one granted to an exchange that is gone goes straight back.
final class Concurrency: ConnectionPhase {
    /// The worker's: this process's slots, or fleet-wide leases.
    let slots: any SlotProvider
    /// For users whose `policy` line (or the `*` line) sets `max-inflight`.
    let policies: PolicyTable

    init?(config: ServerConfig, worker: Worker) {
        guard let slots = worker.slots else { return nil }
        self.slots = slots
        policies = config.policies
    }

    /// Takes a slot, or queues (the exchange waits without blocking), or refuses at once.
    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard ex.route == .inference else { return .next }
        let slots = self.slots
        let later = Resumption(ex: ex, host: c, read: Concurrency.read, giveBack: { slots.giveBack($0) })
        // `max-inflight=off` lifts the per-user cap: the global cap still holds.
        let perUser = policies.isEmpty ? nil : policies.policy(for: ex.user).maxInflight.map { $0.value ?? Int.max }
        return later.outcome(slots.acquire(user: ex.user ?? c.peerString, perUser: perUser,
                                           nowMillis: c.worker.loop.now / 1_000_000, later: later))
    }

    /// The exchange's outcome for `answer`.
    static func read(_ ex: Exchange, _ c: ClientConnection, _ answer: SlotAnswer) -> PhaseOutcome {
        switch answer {
        case .granted(let grant):
            ex.slot = grant
            return .next
        case .queued(let ticket):
            ex.ticket = ticket
            return .wait
        case .rejected(let retryAfter):
            return .answer(busy(retryAfter, "the model is busy and the wait queue is full"), .rejected)
        case .unavailable:
            ex.ticket = nil
            return .answer(ErrorResponse.sharedLimitsUnavailable, .rejected)
        case .waitOver(let grant):
            // A grant for a place this exchange no longer holds goes back; the exchange keeps waiting.
            guard ex.ticket != nil else {
                c.worker.slots?.release(grant)
                return .wait
            }
            ex.ticket = nil
            ex.slot = grant
            return .next
        case .expired:
            ex.ticket = nil
            let seconds = c.worker.config.concurrency?.retryAfterSeconds ?? 5
            return .answer(busy(seconds, "the model stayed busy for the whole wait"), .rejected)
        }
    }

    /// 429 with Retry-After.
    static func busy(_ retryAfter: Int, _ message: String) -> ErrorResponse {
        ErrorResponse(status: 429, message: "\(message); retry in \(retryAfter) s", headers: [("Retry-After", String(retryAfter))])
    }
}
