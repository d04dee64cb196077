/// This process's slots: a `ConcurrencyLimiter` shared by every loop. Its grants and timeouts happen on whichever
/// thread freed the slot or ran the timer, and hop to the request's loop; a grant its loop refuses (that loop has
/// stopped) is given back at once.
struct LocalSlotProvider: SlotProvider {
    /// Shared by every loop of the process.
    let limiter: ConcurrencyLimiter

    func acquire(user: String, perUser: Int?, nowMillis: UInt64, later: Resumption<SlotAnswer>) -> NowOrLater<SlotAnswer> {
        let box = UncheckedBox(later)
        let loop = later.loop
        let limiter = self.limiter
        let result = limiter.acquire(user: user, perUser: perUser, nowMillis: nowMillis, onGranted: { slot in
            // A loop that has stopped never runs the hand-over: the slot goes back here, or its server's limiter
            // keeps it counted (and, with the limiter's next waiter, grants it on).
            if !loop.execute({ box.value.resume(.waitOver(.local(slot))) }) { limiter.release(slot) }
        }, onExpired: {
            loop.execute { box.value.resume(.expired) }
        })
        switch result {
        case .acquired(let slot): return .now(.granted(.local(slot)))
        case .queued(let ticket): return .now(.queued(ticket: ticket))
        case .rejected(let retryAfter): return .now(.rejected(retryAfterSeconds: retryAfter))
        }
    }

    func release(_ grant: SlotGrant) {
        if case .local(let slot) = grant { limiter.release(slot) }
    }

    @discardableResult
    func cancel(ticket: UInt64) -> Bool {
        limiter.cancel(ticket: ticket)
    }
}
