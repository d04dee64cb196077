import Foundation
import Testing
@testable import Tollgate

/// The token counts of every inference route and mode, fed in every split, and what a model's own output cannot
/// make the scanner count.
@Suite struct ObserveUsageScannerTests {
    /// Feeds `text` whole, then split at every byte boundary (two pieces), then one byte at a time: every way must
    /// give the same answer, which is returned.
    private func usage(_ route: InferenceRoute, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> TokenUsage? {
        let bytes = Array(text.utf8)
        var whole = UsageScanner(route: route)
        whole.feed(bytes, 0..<bytes.count)
        for cut in 0...bytes.count {
            var s = UsageScanner(route: route)
            s.feed(bytes, 0..<cut)
            s.feed(bytes, cut..<bytes.count)
            #expect(s.usage == whole.usage, "split at \(cut)", sourceLocation: sourceLocation)
        }
        var bytewise = UsageScanner(route: route)
        for i in 0..<bytes.count { bytewise.feed(bytes, i..<i + 1) }
        #expect(bytewise.usage == whole.usage, "byte by byte", sourceLocation: sourceLocation)
        return whole.usage
    }

    private func tokens(_ p: Int, _ c: Int) -> TokenUsage { TokenUsage(prompt: p, completion: c) }

    // MARK: - native routes

    @Test func generateStreamedTakesTheDoneLine() {
        let stream = """
        {"model":"m","created_at":"t","response":"a","done":false}
        {"model":"m","created_at":"t","response":"","done":true,"done_reason":"stop","context":[1,2],"total_duration":5,"prompt_eval_count":26,"prompt_eval_duration":3,"eval_count":298,"eval_duration":4}

        """
        #expect(usage(.generate, stream) == tokens(26, 298))
    }

    @Test func generateNotStreamed() {
        let body = #"{"model":"m","response":"hi","done":true,"prompt_eval_count":7,"eval_count":2}"#
        #expect(usage(.generate, body) == tokens(7, 2))
    }

    @Test func chatOmittedCountsAreZero() {
        // Go omits zero counts (omitempty): a cached prompt has no prompt_eval_count.
        let body = #"{"model":"m","message":{"role":"assistant","content":"x"},"done":true,"eval_count":5}"#
        #expect(usage(.chat, body) == tokens(0, 5))
    }

    @Test func cutStreamAndErrorLineCountNothing() {
        #expect(usage(.generate, "{\"response\":\"a\",\"done\":false}\n{\"response\":\"b\",\"do") == nil)
        #expect(usage(.chat, "{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"error\":\"out of memory\"}\n") == nil)
        #expect(usage(.generate, "{\"done\":true,\"prompt_eval_count\":3,\"eval_count\":4") == nil)
    }

    @Test func modelOutputCannotForgeCounts() {
        // The text a model writes is always a JSON string; a tool call's arguments are nested objects.
        let stream = #"""
        {"model":"m","response":"{\"done\":true,\"prompt_eval_count\":0,\"eval_count\":0}\n","done":false}
        {"model":"m","message":{"role":"assistant","content":"\"eval_count\": 1","tool_calls":[{"function":{"name":"f","arguments":{"done":true,"eval_count":1,"prompt_eval_count":1}}}]},"done":false}
        {"model":"m","response":"\\\"eval_count\\\":2 \\","done":true,"prompt_eval_count":40,"eval_count":50}

        """#
        #expect(usage(.chat, stream) == tokens(40, 50))
        // A line that never says done counts nothing, whatever its strings say.
        #expect(usage(.generate, #"{"response":"\"done\":true,\"eval_count\":9","done":false}"# + "\n") == nil)
        // Escaped key bytes are not the key Ollama writes.
        #expect(usage(.generate, #"{"done":true,"eval\u005fcount":9,"eval_count":3}"#) == tokens(0, 3))
    }

    @Test func embed() {
        #expect(usage(.embed, #"{"model":"m","embeddings":[[0.1,-2e-3]],"total_duration":1,"prompt_eval_count":8}"#) == tokens(8, 0))
        #expect(usage(.embed, #"{"error":"model not found"}"#) == nil)
        #expect(usage(.embeddings, #"{"embedding":[0.5,1]}"#) == tokens(0, 0))
    }

    // MARK: - OpenAI routes

    @Test func chatCompletionsNotStreamed() {
        let body = #"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"{\"usage\":{\"prompt_tokens\":1}}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#
        #expect(usage(.chatCompletions, body + "\n") == tokens(9, 12))
    }

    @Test func chatCompletionsStreamedNeedsDone() {
        let events = """
        data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":"usage\\":{\\"prompt_tokens\\":1}"}}]}

        data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

        data: {"id":"x","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}


        """
        #expect(usage(.chatCompletions, events) == nil)
        #expect(usage(.chatCompletions, events + "data: [DONE]\n\n") == tokens(9, 12))
        // Without include_usage there is no usage event: nothing counted.
        #expect(usage(.chatCompletions, "data: {\"id\":\"x\",\"choices\":[]}\n\ndata: [DONE]\n\n") == nil)
    }

    @Test func completionsStreamedTakesTheLastUsage() {
        // With include_usage Ollama puts a zero usage on every chunk, the real one on the usage-only chunk.
        let events = """
        data: {"id":"c","object":"text_completion","created":1,"choices":[{"text":"a","index":0,"finish_reason":null}],"model":"m","system_fingerprint":"fp_ollama","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}

        data: {"id":"c","object":"text_completion","created":1,"choices":[],"model":"m","system_fingerprint":"fp_ollama","usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}

        data: [DONE]

        """
        #expect(usage(.completions, events) == tokens(5, 1))
    }

    @Test func openAIEmbeddings() {
        let body = #"{"object":"list","data":[{"object":"embedding","embedding":[0.1],"index":0}],"model":"m","usage":{"prompt_tokens":4,"total_tokens":4}}"#
        #expect(usage(.openAIEmbeddings, body) == tokens(4, 0))
    }

    @Test func responsesNotStreamedAndStreamed() {
        let body = #"{"id":"resp_1","object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"\"usage\":{\"input_tokens\":1}"}]}],"usage":{"input_tokens":11,"output_tokens":3,"total_tokens":14}}"#
        #expect(usage(.responses, body) == tokens(11, 3))
        // Go sorts map keys: "response" comes before "type" in the event.
        let events = """
        event: response.created
        data: {"response":{"id":"r","usage":null},"sequence_number":0,"type":"response.created"}

        event: response.output_text.delta
        data: {"delta":"\\"usage\\":{\\"input_tokens\\":1}","sequence_number":1,"type":"response.output_text.delta"}

        event: response.completed
        data: {"response":{"id":"r","output":[],"usage":{"input_tokens":11,"input_tokens_details":{"cached_tokens":0},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":14}},"sequence_number":2,"type":"response.completed"}


        """
        #expect(usage(.responses, events) == tokens(11, 3))
        #expect(usage(.responses, String(events.prefix(300))) == nil)
        let failed = "event: response.failed\ndata: {\"response\":{\"status\":\"failed\",\"usage\":{\"input_tokens\":4,\"output_tokens\":2}},\"type\":\"response.failed\"}\n\n"
        #expect(usage(.responses, failed) == tokens(4, 2))
    }

    @Test func anthropicNotStreamedAndStreamed() {
        let body = #"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"t","name":"f","input":{"usage":{"input_tokens":1,"output_tokens":1}}}],"stop_reason":"tool_use","usage":{"input_tokens":20,"output_tokens":6}}"#
        #expect(usage(.messages, body) == tokens(20, 6))
        let events = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":20,"output_tokens":0}}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\\"usage\\":{\\"output_tokens\\":1}"}}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":21,"output_tokens":6}}

        event: message_stop
        data: {"type":"message_stop"}


        """
        #expect(usage(.messages, events) == tokens(21, 6))
        // An older message_delta without input_tokens: message_start's count.
        let older = events.replacingOccurrences(of: #""input_tokens":21,"#, with: "")
        #expect(usage(.messages, older) == tokens(20, 6))
        // Cut before message_delta: nothing.
        #expect(usage(.messages, String(events.prefix(250))) == nil)
    }

    /// Model output made of the pieces an attacker would use, encoded as Ollama's JSON encoder encodes strings.
    @Test func generatedAdversarialOutputNeverCounts() throws {
        let pieces = ["\"eval_count\":0", "\\", "\"", "}", "{", "\n", "\"done\":true", "\"usage\":{\"prompt_tokens\":1}",
                      "data: [DONE]\n\n", "é", "\u{2028}", "\"prompt_eval_count\": 7", "]", "[", ":", ",", "\r\n\r\n"]
        var state: UInt64 = 42
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        for round in 0..<40 {
            var text = ""
            for _ in 0..<(1 + next(12)) { text += pieces[next(pieces.count)] }
            let content = String(decoding: try JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed]), as: UTF8.self)
                .dropFirst().dropLast()  // the encoded string, quotes included
            let ndjson = "{\"model\":\"m\",\"response\":\(content),\"done\":false}\n"
                + "{\"model\":\"m\",\"response\":\(content),\"done\":true,\"prompt_eval_count\":\(round + 1),\"eval_count\":\(round + 2)}\n"
            #expect(usage(.generate, ndjson) == tokens(round + 1, round + 2), "\(ndjson)")
            let sse = "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\(content)}}]}\n\n"
                + "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":\(round),\"completion_tokens\":3}}\n\n"
                + "data: [DONE]\n\n"
            #expect(usage(.chatCompletions, sse) == tokens(round, 3), "\(sse)")
            let onlyOutput = "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\(content)}}]}\n\ndata: [DONE]\n\n"
            #expect(usage(.chatCompletions, onlyOutput) == nil, "\(onlyOutput)")
        }
    }

    @Test func negativeOrFractionalCountsAreNotCounts() {
        #expect(usage(.generate, #"{"done":true,"prompt_eval_count":-3,"eval_count":2.5}"#) == tokens(0, 0))
    }
}
