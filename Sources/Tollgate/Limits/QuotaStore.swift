/// Where the `Quota` phase reserves and exchanges settle: this process's `QuotaBook` (`LocalQuotaStore`) or the
/// fleet's balances in Redis (`SharedQuotaStore`, which falls back to this process's book while Redis cannot
/// answer). The worker picks one when it builds its phases. Loop thread only.
protocol QuotaStore {
    /// Reserves for one request by `user` under `limits`: the decision now, or later through `later`. A grant must
    /// be settled exactly once, through this same store.
    func reserve(user: String, limits: QuotaLimits, estimate: QuotaEstimate,
                 later: Resumption<QuotaDecision>) -> NowOrLater<QuotaDecision>
    /// The same reservation holding a smaller generation cap, `predict`: the difference is released.
    func shrink(_ reservation: QuotaReservation, toPredict predict: Int) -> QuotaReservation
    /// Ends a reservation where it was made: releases what it held and charges `charge`.
    func settle(_ reservation: QuotaReservation, _ charge: QuotaCharge)
}

/// This process's balances: the `QuotaBook` every worker shares. Answers at once.
struct LocalQuotaStore: QuotaStore {
    /// Shared by every loop of the process.
    let book: QuotaBook

    func reserve(user: String, limits: QuotaLimits, estimate: QuotaEstimate,
                 later: Resumption<QuotaDecision>) -> NowOrLater<QuotaDecision> {
        .now(book.reserve(user: user, limits: limits, estimate: estimate))
    }

    func shrink(_ reservation: QuotaReservation, toPredict predict: Int) -> QuotaReservation {
        book.shrink(reservation, toPredict: predict)
    }

    func settle(_ reservation: QuotaReservation, _ charge: QuotaCharge) {
        book.settle(reservation, charge)
    }
}
