import TollgateHTTP

/// The `policy` lines on an inference request, once its body was read whole and its model passed the gate: the
/// caps it may ask of the GPU (`max-context`, `max-predict`, `keep-alive`), and its user's token and request quotas.
///
/// A user with a quota reserves from their balance (`QuotaBook`): the prompt's conservative estimate (the body's
/// size, `QuotaEstimate.prompt`) plus a generation cap, which is what the quota has left after the estimate (never
/// more than `max-predict`); the request is sent with that cap, so it cannot spend more than was left. A request
/// whose estimate alone exceeds what is left, or that finds the quota spent, gets 429 with `Retry-After` and the
/// quota's RateLimit headers. The reservation settles with Ollama's count when the exchange ends
/// (`ClientConnection.settleQuota`). Every authenticated user's spending is recorded, quota or not, so that a reload
/// that adds a quota knows what was spent today.
struct Quota: ConnectionPhase {
    let policies: PolicyTable
    let book: QuotaBook

    init?(config: ServerConfig, worker: Worker) {
        guard let book = worker.quotaBook, config.users != nil || !config.policies.isEmpty else { return nil }
        self.book = book
        policies = config.policies
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard ex.route == .inference else { return .next }
        let policy = policies.policy(for: ex.user)
        guard let user = ex.user else { return .next }
        let estimate = QuotaEstimate(promptTokens: QuotaEstimate.prompt(bodyBytes: ex.stagedBody.count),
                                     generates: Quota.generates(ex.path), maxPredict: policy.maxPredict?.value)
        switch book.reserve(user: user, limits: policy.quotaLimits, estimate: estimate) {
        case .refused(let refusal):
            return .answer(ErrorResponse(status: 429, message: refusal.message, headers: refusal.headers), .rateLimited)
        case .granted(let reservation):
            ex.quota = reservation
        }
        return .next
    }

    /// Whether a request to `path` generates tokens (the embedding routes cost their input alone).
    static func generates(_ path: String) -> Bool {
        !(path == "/api/embed" || path == "/api/embeddings" || path == "/v1/embeddings")
    }
}
