import Testing
@testable import Tollgate

/// Regression tests from the pinning attack (proofs of concept before the fix that removes such keys): a user who
/// may not override could still make Ollama reload the shared model, because Ollama tells an options key sent as
/// `null` from an absent one. Its `modelOptions` tests key presence
/// (`hasOption(requestOpts, name)`), not the value: `draft_num_predict: null` keeps `DraftNumPredict` at its default
/// 4 where an absent key sets it to 0 (a model without a draft model), `num_batch: null` turns off the automatic
/// generation batch (512 instead of 1024/2048) and `num_ctx: null` the automatic context (no lowering on a load that
/// does not fit). Each is a different runner option, which the scheduler's `needsReload` compares. So such a key must
/// not reach Ollama: removed (or the body refused).
@Suite struct PinningNullOptionTests {
    /// What Ollama receives: the rewritten body, or the body as sent.
    static func forwarded(_ text: String, limits: GenerationLimits) -> String? {
        let body = Array(text.utf8)
        guard case .success(nil) = BodyRewrite.override(in: body, route: .generate, overrides: false, webSearch: true),
              case .success(let plan) = BodyRewrite.plan(body, route: .generate, limits: limits, countUsage: true)
        else { return nil }  // refused: nothing reaches Ollama
        return String(decoding: plan.body ?? body, as: UTF8.self)
    }

    /// Alternating this body with a plain one reloads the model on every request (DraftNumPredict 4, then 0).
    @Test func nullDraftNumPredictIsRemoved() {
        let sent = Self.forwarded(#"{"model":"m","prompt":"p","options":{"draft_num_predict":null}}"#,
                                  limits: GenerationLimits(pinned: true))
        #expect(sent == nil || !(sent!.contains("draft_num_predict")), "\(sent ?? "refused")")
    }

    /// Spelled with escapes (Go decodes the key before the map lookup), given twice, among sampling options.
    @Test func nullRunnerOptionsInOtherSpellingsAreRemoved() {
        for body in [#"{"model":"m","prompt":"p","options":{"\u0064\u0072\u0061\u0066\u0074\u005f\u006e\u0075\u006d\u005f\u0070\u0072\u0065\u0064\u0069\u0063\u0074":null}}"#,
                     #"{"model":"m","prompt":"p","options":{"draft_num_predict":null,"draft_num_predict":null}}"#,
                     #"{"model":"m","prompt":"p","options":{"temperature":1 , "num_batch" : null , "seed":2}}"#] {
            let sent = Self.forwarded(body, limits: GenerationLimits(pinned: true))
            #expect(sent == nil || !(sent!.contains("draft") || sent!.contains("batch") || sent!.contains("u0064")), "\(body) -> \(sent ?? "refused")")
        }
    }

    @Test func nullNumBatchIsRemoved() {
        let sent = Self.forwarded(#"{"model":"m","prompt":"p","options":{"num_batch":null}}"#,
                                  limits: GenerationLimits(pinned: true))
        #expect(sent == nil || !(sent!.contains("num_batch")), "\(sent ?? "refused")")
    }

    /// Pinned without `max-context`: `"num_ctx":null` (which the rewrite once wrote, and a client's own null) is read
    /// by Ollama as a set num_ctx (`usesAutomaticNumCtx` is false), not as the server's default: the key goes.
    @Test func numCtxPinnedWithoutCapIsRemoved() {
        for body in [#"{"model":"m","prompt":"p","options":{"num_ctx":8192}}"#,
                     #"{"model":"m","prompt":"p","options":{"num_ctx":null}}"#] {
            let sent = Self.forwarded(body, limits: GenerationLimits(pinned: true))
            #expect(sent == nil || !(sent!.contains("num_ctx")), "\(body) -> \(sent ?? "refused")")
        }
    }
}
