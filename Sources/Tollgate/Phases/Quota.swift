import TollgateHTTP

/// The `policy` lines on an inference request, once its body was read whole and its model passed the gate: the
/// caps it may ask of the GPU (`max-context`, `max-predict`, `keep-alive`, as `ex.generationLimits`), and its
/// user's token and request quotas.
///
/// A user with a token quota reserves from their balance (the worker's `QuotaStore`: this process's `QuotaBook`, or
/// the fleet's in Redis, answered later) the prompt's conservative estimate (the
/// body's size, `QuotaEstimate.prompt`) plus a generation cap: what the quota has left after the estimate, never
/// more than `max-predict`. The body is rewritten with that cap at once (`ClientConnection.rewriteBody`), so the
/// request cannot generate more than was left; when the client asked for less, the reservation shrinks to what it
/// asked. A request whose estimate alone exceeds what is left, or that finds the quota spent, gets 429 with
/// `Retry-After` and the quota's RateLimit headers. The reservation settles with Ollama's count when the exchange
/// ends (`ClientConnection.settleQuota`). Every authenticated user's spending is recorded, quota or not, so that a
/// reload that adds a quota knows what was spent today.
final class Quota: ConnectionPhase {
    let policies: PolicyTable
    /// The worker's: this process's book, or the fleet's balances in Redis.
    let store: any QuotaStore

    /// The response header that says a request's generation was lowered to what its quota had left:
    /// `X-Tollgate-Quota-Capped: num_predict=123` (the field as the route names it, as in `X-Tollgate-Lowered`).
    static let cappedHeader = "X-Tollgate-Quota-Capped"

    init?(config: ServerConfig, worker: Worker) {
        guard let store = worker.quotas, config.users != nil || !config.policies.isEmpty else { return nil }
        self.store = store
        policies = config.policies
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard ex.route == .inference, let route = ex.inferenceRoute else { return .next }
        let policy = policies.policy(for: ex.user)
        let limits = GenerationLimits(maxContext: policy.maxContext?.value, maxPredict: policy.maxPredict?.value,
                                      keepAlive: policy.keepAliveSeconds?.value.map { KeepAliveLimit(seconds: $0) },
                                      pinned: ex.generationLimits?.pinned ?? false)
        if !limits.isEmpty { ex.generationLimits = limits }
        guard let user = ex.user else { return .next }
        // Images are counted (a walk of the body) only where a token quota reads the estimate.
        let images = policy.quotaLimits.limitsTokens ? BodyRewrite.imageCount(in: ex.stagedBody) : 0
        let estimate = QuotaEstimate(promptTokens: QuotaEstimate.prompt(bodyBytes: ex.stagedBody.count, images: images),
                                     generates: route.generates, maxPredict: limits.maxPredict)
        let store = self.store
        // A grant that reaches an exchange already gone is given back at once, charging nothing.
        let later = Resumption(ex: ex, host: c, read: Quota.read, giveBack: { decision in
            if case .granted(let r) = decision { store.settle(r, .nothing) }
        })
        return later.outcome(store.reserve(user: user, limits: policy.quotaLimits, estimate: estimate, later: later))
    }

    /// The exchange's outcome for `decision`: 429 (503 when the fleet's balances cannot answer and the fallback
    /// refuses), or the reservation kept and its generation cap written into the body.
    static func read(_ ex: Exchange, _ c: ClientConnection, _ decision: QuotaDecision) -> PhaseOutcome {
        let reservation: QuotaReservation
        switch decision {
        case .refused(let refusal):
            return .answer(ErrorResponse(status: 429, message: refusal.message, headers: refusal.headers), .rateLimited)
        case .unavailable:
            return .answer(ErrorResponse.sharedLimitsUnavailable, .rejected)
        case .granted(let r):
            reservation = r
        }
        ex.quota = reservation
        guard let cap = reservation.predictCap else { return .next }
        // The cap goes into the body now, so that what the request really may generate is known here.
        var limits = ex.generationLimits ?? GenerationLimits()
        limits.maxPredict = cap
        ex.generationLimits = limits
        if let refusal = c.rewriteBody(ex) { return .answer(refusal, .rejected) }
        if let sent = ex.generationCap, sent >= 0, sent < cap, let store = c.worker.quotas {
            ex.quota = store.shrink(reservation, toPredict: sent)
        } else if reservation.capped, let field = ex.lowered.first(where: { Quota.isPredictField($0.field) }),
                  field.to == cap {
            ex.responseHeaders.append((Quota.cappedHeader, "\(field.field)=\(cap)"))
        }
        return .next
    }

    /// Whether `field` (as `LoweredField` names it) is the route's generation limit.
    static func isPredictField(_ field: String) -> Bool {
        field == "num_predict" || field == "max_tokens" || field == "max_output_tokens"
    }
}
