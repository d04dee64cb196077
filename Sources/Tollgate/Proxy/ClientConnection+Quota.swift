/// Settling an exchange's quota reservation when it ends.
extension ClientConnection {
    /// Gives back what `ex` reserved of its user's quota and charges what it cost (`QuotaCharge.of`). Exactly once per
    /// exchange (`releaseAdmission`).
    func settleQuota(_ ex: Exchange) {
        guard let reservation = ex.quota else { return }
        ex.quota = nil
        let charge = QuotaCharge.of(ex, reserved: reservation.tokens)
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
    /// request was sent (the upstream broke or went silent mid-generation). A backend that was written the request
    /// and failed before answering, after which the request went to another, adds `reserved` (what it may have
    /// worked through is unknown): failing over does not make the first backends' work free.
    static func of(_ ex: Exchange, reserved: Int) -> QuotaCharge {
        let last = lastBackend(ex)
        guard ex.abandonedBackends > 0 else { return last }
        let base: Int
        switch last {
        case .counted(let n): base = max(0, n)
        case .reservation: base = reserved
        case .nothing: base = 0
        }
        return .counted(base + ex.abandonedBackends * reserved)
    }

    /// What the backend that answered (or failed last) cost.
    private static func lastBackend(_ ex: Exchange) -> QuotaCharge {
        if !ex.forwarded { return .nothing }
        if ex.upstreamAnswered && ex.status == 404 { return .nothing }
        if let usage = ex.tokenUsage, ex.inferenceRoute != .embeddings { return .counted(usage.total) }
        return .reservation
    }
}
