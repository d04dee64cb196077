import TollgateIO

/// Token and request quotas across the fleet: a user with a quota reserves from their balance in Redis
/// (`SharedQuotas`, answered later, on the loop) and settles there. A user without any quota costs no Redis call:
/// this process's book records their spending. While Redis is unavailable the `redis-fallback` policy decides:
/// `local` reserves from this process's book at each limit/N (rounded up; the book knows this instance's own
/// spending, every settlement through Redis included), `open` admits without a quota, `closed` refuses with 503. A
/// reservation is settled where it was made: a hold in Redis through Redis, a local one in the book. Loop thread
/// only.
struct SharedQuotaStore: QuotaStore {
    /// This process's balances: the fallback, and this instance's own spending.
    let book: QuotaBook
    /// This worker's side of the shared limits (connection, fallback state).
    let limits: SharedLimits
    /// The fleet's balances.
    let quotas: SharedQuotas

    func reserve(user: String, limits quota: QuotaLimits, estimate: QuotaEstimate,
                 later: Resumption<QuotaDecision>) -> NowOrLater<QuotaDecision> {
        guard quota.limitsTokens || quota.requestsPerDay != nil else {
            return .now(book.reserve(user: user, limits: quota, estimate: estimate))
        }
        if limits.isDown {
            limits.unavailable(.quota, limits.downError, counted: false)
            return .now(fallback(user: user, quota: quota, estimate: estimate))
        }
        let limits = self.limits
        let store = self
        quotas.reserve(user: user, limits: quota, estimate: estimate) { outcome in
            switch outcome {
            case .decided(let decision):
                limits.answered(.quota)
                later.resume(decision)
            case .unavailable(let error):
                limits.unavailable(.quota, error)
                later.resume(store.fallback(user: user, quota: quota, estimate: estimate))
            }
        }
        return .later
    }

    func shrink(_ reservation: QuotaReservation, toPredict predict: Int) -> QuotaReservation {
        reservation.hold == nil ? book.shrink(reservation, toPredict: predict) : quotas.shrink(reservation, toPredict: predict)
    }

    func settle(_ reservation: QuotaReservation, _ charge: QuotaCharge) {
        guard reservation.hold != nil else {
            book.settle(reservation, charge)
            return
        }
        // Charged in the book (this instance's spending) before it is sent: see `SharedQuotas.settle`.
        quotas.settle(reservation, charge)
    }

    /// Redis cannot decide: this process's book at limit/N (`local`), no quota (`open`), or 503 (`closed`).
    private func fallback(user: String, quota: QuotaLimits, estimate: QuotaEstimate) -> QuotaDecision {
        switch limits.policy {
        case .local:
            let shared = limits.settings
            let share = QuotaLimits(tokensPerDay: quota.tokensPerDay.map(shared.share),
                                    tokensPerMonth: quota.tokensPerMonth.map(shared.share),
                                    requestsPerDay: quota.requestsPerDay.map(shared.share))
            return book.reserve(user: user, limits: share, estimate: estimate)
        case .open:
            return book.reserve(user: user, limits: QuotaLimits(), estimate: estimate)
        case .closed:
            return .unavailable
        }
    }
}
