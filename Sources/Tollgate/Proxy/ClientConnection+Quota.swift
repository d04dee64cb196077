/// Settling an exchange's quota reservation when it ends.
extension ClientConnection {
    /// Gives back what `ex` reserved of its user's quota and charges what it cost (`QuotaCharge.of`). Exactly once per
    /// exchange (`releaseAdmission`).
    func settleQuota(_ ex: Exchange) {
        guard let reservation = ex.quota else { return }
        ex.quota = nil
        let charge = QuotaCharge.of(ex)
        worker.quotaBook?.settle(reservation, charge)
        // The same charge goes into the usage ledger's row, so a restart seeds the balances with it exactly.
        switch charge {
        case .counted(let n): ex.charged = (max(0, n), true)
        case .reservation: ex.charged = (reservation.tokens, true)
        case .nothing: ex.charged = (0, false)
        }
    }
}

extension QuotaCharge {
    /// What an ended exchange costs its user: Ollama's count when the response carried one; nothing when Ollama did
    /// no work (the request never reached an upstream, or it answered with an error status, which it does before
    /// generating); otherwise (cut off before the count, the client gone, the upstream silent) the whole reservation,
    /// as Ollama may have evaluated and generated up to it.
    static func of(_ ex: Exchange) -> QuotaCharge {
        if let usage = ex.tokenUsage { return .counted(usage.total) }
        if ex.upstreamStart == 0 { return .nothing }
        if ex.headSent && ex.status >= 400 { return .nothing }
        return .reservation
    }
}
