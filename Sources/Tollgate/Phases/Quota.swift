import TollgateHTTP

/// The `policy` lines on an inference request, once its body was read whole and its model passed the gate: the
/// caps it may ask of the GPU (`max-context`, `max-predict`, `keep-alive`, as `ex.generationLimits`), and its
/// user's token and request quotas.
///
/// A user with a token quota reserves from their balance (`QuotaBook`) the prompt's conservative estimate (the
/// body's size, `QuotaEstimate.prompt`) plus a generation cap: what the quota has left after the estimate, never
/// more than `max-predict`. The body is rewritten with that cap at once (`ClientConnection.rewriteBody`), so the
/// request cannot generate more than was left; when the client asked for less, the reservation shrinks to what it
/// asked. A request whose estimate alone exceeds what is left, or that finds the quota spent, gets 429 with
/// `Retry-After` and the quota's RateLimit headers. The reservation settles with Ollama's count when the exchange
/// ends (`ClientConnection.settleQuota`). Every authenticated user's spending is recorded, quota or not, so that a
/// reload that adds a quota knows what was spent today.
struct Quota: ConnectionPhase {
    let policies: PolicyTable
    let book: QuotaBook

    /// The response header that says a request's generation was lowered to what its quota had left:
    /// `X-Tollgate-Quota-Capped: num_predict=123` (the field as the route names it, as in `X-Tollgate-Lowered`).
    static let cappedHeader = "X-Tollgate-Quota-Capped"

    init?(config: ServerConfig, worker: Worker) {
        guard let book = worker.quotaBook, config.users != nil || !config.policies.isEmpty else { return nil }
        self.book = book
        policies = config.policies
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard ex.route == .inference, let route = ex.inferenceRoute else { return .next }
        let policy = policies.policy(for: ex.user)
        var limits = GenerationLimits(maxContext: policy.maxContext?.value, maxPredict: policy.maxPredict?.value,
                                      keepAlive: policy.keepAliveSeconds?.value.map { KeepAliveLimit(seconds: $0) })
        guard let user = ex.user else {
            if !limits.isEmpty { ex.generationLimits = limits }
            return .next
        }
        let estimate = QuotaEstimate(promptTokens: QuotaEstimate.prompt(bodyBytes: ex.stagedBody.count),
                                     generates: route.generates, maxPredict: limits.maxPredict)
        let reservation: QuotaReservation
        switch book.reserve(user: user, limits: policy.quotaLimits, estimate: estimate) {
        case .refused(let refusal):
            return .answer(ErrorResponse(status: 429, message: refusal.message, headers: refusal.headers), .rateLimited)
        case .granted(let r):
            reservation = r
        }
        ex.quota = reservation
        guard let cap = reservation.predictCap else {
            if !limits.isEmpty { ex.generationLimits = limits }
            return .next
        }
        // The cap goes into the body now, so that what the request really may generate is known here.
        limits.maxPredict = cap
        ex.generationLimits = limits
        if let refusal = c.rewriteBody(ex) { return .answer(refusal, .rejected) }
        if let sent = ex.generationCap, sent >= 0, sent < cap {
            ex.quota = book.shrink(reservation, toPredict: sent)
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
