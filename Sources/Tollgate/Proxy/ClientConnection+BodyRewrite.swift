import TollgateHTTP

/// The one step that changes an inference body before it goes upstream: the caps of `ex.generationLimits` and the
/// usage request of a streamed OpenAI call (`BodyRewrite`), then the upstream head's framing for the new length.
extension ClientConnection {
    /// Plans and applies the body rewrite of `ex`, once (later calls return nil and change nothing). Called by
    /// `proxy` right before the request is forwarded; a phase that must know the outcome sooner (a quota reserving
    /// `ex.generationCap`) may call it itself once it has set `ex.generationLimits`. Sets `ex.lowered`,
    /// `ex.generationCap`, `ex.usageInjected` and the `X-Tollgate-Lowered` header. Returns the refusal (400) for a
    /// body whose clamped fields are ambiguous. A body needing no change is not touched: it goes as it came.
    /// Loop thread.
    func rewriteBody(_ ex: Exchange) -> ErrorResponse? {
        guard !ex.bodyRewritten else { return nil }
        ex.bodyRewritten = true
        guard let route = ex.inferenceRoute, ex.wholeBody, !ex.stagedBody.isEmpty else { return nil }
        let plan: BodyRewrite.Plan
        switch BodyRewrite.plan(ex.stagedBody, route: route, limits: ex.generationLimits, countUsage: true) {
        case .failure(let refusal):
            return ErrorResponse(status: 400, message: refusal.message)
        case .success(let p):
            plan = p
        }
        ex.lowered = plan.lowered
        ex.usageInjected = plan.usageInjected
        ex.generationCap = plan.generationCap
        if !plan.lowered.isEmpty {
            ex.responseHeaders.append(("X-Tollgate-Lowered", LoweredField.headerValue(plan.lowered)))
        }
        if let body = plan.body {
            ex.stagedBody = body
            // The staged body is raw (de-chunked): it goes with its new length, chunked or not as it came.
            RequestRewriter.replaceFraming(&ex.upstreamHead, contentLength: body.count)
            ex.bodyLengthFramed = true
        }
        return nil
    }
}
