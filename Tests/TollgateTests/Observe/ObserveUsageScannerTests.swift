import Testing
@testable import Tollgate

@Suite struct ObserveUsageScannerTests {
    private func scan(_ text: String, model: Bool = false, split: Int? = nil) -> UsageScanner {
        var s = UsageScanner(model: model)
        let bytes = Array(text.utf8)
        if let split {
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + split)
                s.feed(bytes, start..<end)
                start = end
            }
        } else {
            s.feed(bytes, 0..<bytes.count)
        }
        return s
    }

    @Test func ollamaFinalLine() {
        let stream = """
        {"model":"mistral:7b","response":"a","done":false}
        {"model":"mistral:7b","response":"","done":true,"prompt_eval_count":26,"eval_count":298,"eval_duration":4}

        """
        let s = scan(stream)
        #expect(s.promptTokens == 26)
        #expect(s.completionTokens == 298)
    }

    @Test(arguments: [1, 2, 3, 7, 64])
    func splitAnywhereGivesTheSameCounts(_ piece: Int) {
        let stream = #"{"done":true,"prompt_eval_count" : 12 ,"eval_count":3456}"#
        let s = scan(stream, split: piece)
        #expect(s.promptTokens == 12)
        #expect(s.completionTokens == 3456)
    }

    @Test func openAIUsageInSSE() {
        let sse = """
        data: {"id":"x","choices":[{"delta":{"content":"hi"}}]}

        data: {"id":"x","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}

        data: [DONE]

        """
        let s = scan(sse, split: 5)
        #expect(s.promptTokens == 9)
        #expect(s.completionTokens == 12)
    }

    @Test func modelFromRequestBody() {
        let s = scan(#"{"prompt":"say \"model\"","model":"mistral:7b","stream":true}"#, model: true, split: 3)
        #expect(s.model == "mistral:7b")
    }

    @Test func promptTextThatLooksLikeAKeyIsNotCounted() {
        // Inside a string value the key text is escaped, so it never matches a real key.
        let s = scan(#"{"response":"\"eval_count\": 5","done":false}"#)
        #expect(s.completionTokens == nil)
    }

    @Test func malformedValuesAreIgnored() {
        let s = scan(#"{"eval_count":"x","prompt_eval_count":-3}"#)
        #expect(s.completionTokens == nil)
        #expect(s.promptTokens == nil)
    }
}
