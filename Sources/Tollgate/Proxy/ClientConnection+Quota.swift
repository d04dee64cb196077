/// Settling an exchange's quota reservation when it ends.
extension ClientConnection {
    /// Gives back what `ex` reserved of its user's quota and charges what it cost (`QuotaCharge.of`). Exactly once per
    /// exchange (`releaseAdmission`).
    func settleQuota(_ ex: Exchange) {
        guard let reservation = ex.quota else { return }
        ex.quota = nil
        let charge = QuotaCharge.of(ex)
        worker.quotas?.settle(reservation, charge)
        // The same charge goes into the usage ledger's row, so a restart seeds the balances with it exactly.
        switch charge {
        case .counted(let n): ex.charged = (max(0, n), true)
        case .reservation: ex.charged = (reservation.tokens, true)
        case .nothing: ex.charged = (0, false)
        }
    }
}

extension QuotaCharge {
    /// What an ended exchange costs its user: Ollama's count when the response carried one; nothing when no byte of
    /// the request was written to an upstream (Ollama cannot have worked on it) or when Ollama answered `404` (an
    /// unknown model or route: it looks the model up before it loads or runs anything); otherwise the whole
    /// reservation, as Ollama may have evaluated and generated up to it. That includes an answer without a count
    /// (`/api/embeddings` never reports one), any other error status from Ollama (some come only after the work: an
    /// `/api/embed` input over the context with `truncate: false` is refused after the other inputs were embedded, a
    /// structured output that does not parse after the whole generation), and Tollgate's own `502`/`504` once the
    /// request was sent (the upstream broke or went silent mid-generation).
    static func of(_ ex: Exchange) -> QuotaCharge {
        if !ex.forwarded { return .nothing }
        if ex.upstreamAnswered && ex.status == 404 { return .nothing }
        if let usage = ex.tokenUsage, ex.inferenceRoute != .embeddings { return .counted(usage.total) }
        return .reservation
    }
}
