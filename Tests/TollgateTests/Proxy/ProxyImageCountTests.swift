import Testing
@testable import Tollgate

/// `BodyRewrite.imageCount`: the images a quota's prompt estimate adds `QuotaEstimate.tokensPerImage` for, in each
/// route's shape.
@Suite struct ProxyImageCountTests {
    private func count(_ body: String) -> Int { BodyRewrite.imageCount(in: Array(body.utf8)) }

    @Test func nativeImages() {
        #expect(count(#"{"model":"m","prompt":"p","images":["aGk=","aGk=","aGk="]}"#) == 3)
        #expect(count(#"{"model":"m","messages":[{"role":"user","content":"p","images":["aGk="]},{"role":"user","images":["a","b"]}]}"#) == 3)
        #expect(count(#"{"model":"m","prompt":"p"}"#) == 0)
        #expect(count(#"{"model":"m","prompt":"p","images":null}"#) == 0)
    }

    @Test func contentParts() {
        // OpenAI chat.
        #expect(count(#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"p"},{"type":"image_url","image_url":{"url":"data:image/png;base64,aGk="}}]}]}"#) == 1)
        // Anthropic, one in a tool result.
        #expect(count(#"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"aGk="}},{"type":"tool_result","content":[{"type":"image","source":{}}]}]}]}"#) == 2)
        // Responses.
        #expect(count(#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:,"},{"type":"input_text","text":"p"}]}]}"#) == 1)
        #expect(count(#"{"model":"m","input":"just text"}"#) == 0)
    }

    /// Keys Go would fold to the field count, duplicates too: the estimate errs high, never low.
    @Test func spellingsAndDuplicatesCount() {
        #expect(count(#"{"model":"m","Images":["a"],"images":["b"]}"#) == 2)
        #expect(count(#"{"model":"m","messages":[{"content":[{"TYPE":"IMAGE_URL"}]}]}"#) == 1)
        #expect(count(#"{"model":"m","\u0069mages":["a"]}"#) == 1)
    }

    @Test func notJSONCountsNothing() {
        #expect(count("") == 0)
        #expect(count("[1,2]") == 0)
        #expect(count(#"{"images":["a""#) == 0)
    }

    @Test func theEstimateAddsEachImage() {
        #expect(QuotaEstimate.prompt(bodyBytes: 100, images: 2) == 100 + 2 * QuotaEstimate.tokensPerImage + QuotaEstimate.templateOverhead)
    }
}
