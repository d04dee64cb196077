import Testing
@testable import Tollgate

/// `SSEUsageFilter`: the injected usage leaves the stream, every other byte stays, split anywhere.
@Suite struct ProxySSEUsageFilterTests {
    private func filtered(_ text: String, split: Int? = nil) -> String {
        let bytes = Array(text.utf8)
        var f = SSEUsageFilter()
        var out: [UInt8] = []
        if let split {
            f.feed(bytes, 0..<split, into: &out)
            f.feed(bytes, split..<bytes.count, into: &out)
        } else {
            for i in 0..<bytes.count { f.feed(bytes, i..<i + 1, into: &out) }
        }
        f.finish(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    let chat = """
    data: {"id":"x","choices":[{"index":0,"delta":{"content":"\\"usage\\":{}"}}]}

    data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

    data: {"id":"x","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}

    data: [DONE]


    """

    @Test func usageOnlyChunkIsDropped() {
        let expected = """
        data: {"id":"x","choices":[{"index":0,"delta":{"content":"\\"usage\\":{}"}}]}

        data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

        data: [DONE]


        """
        for split in 0...chat.utf8.count { #expect(filtered(chat, split: split) == expected, "split \(split)") }
        #expect(filtered(chat) == expected)
    }

    @Test func zeroUsageMemberIsRemovedFromCompletionChunks() {
        let events = """
        data: {"id":"c","choices":[{"text":"a","index":0,"finish_reason":null}],"model":"m","system_fingerprint":"fp_ollama","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}

        data: {"id":"c","choices":[],"model":"m","system_fingerprint":"fp_ollama","usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}

        data: [DONE]


        """
        let expected = """
        data: {"id":"c","choices":[{"text":"a","index":0,"finish_reason":null}],"model":"m","system_fingerprint":"fp_ollama"}

        data: [DONE]


        """
        #expect(filtered(events) == expected)
        #expect(filtered(events, split: 100) == expected)
    }

    @Test func usageFirstOrAlone() {
        #expect(filtered("data: {\"usage\":{\"a\":1},\"id\":\"x\"}\n\n") == "data: {\"id\":\"x\"}\n\n")
        #expect(filtered("data: {\"usage\":null}\n\n") == "data: {}\n\n")
    }

    @Test func otherEventsAndAnUnfinishedTailPassAsTheyAre() {
        let text = ": comment\n\nevent: x\ndata: not json\n\ndata: {\"id\":1}\r\n\r\ndata: {\"usage\":{\"p\":1},\"choi"
        #expect(filtered(text) == text)
    }

    /// An event past `maxEvent` passes as it comes (nothing more is held for it), and the filter takes up again at
    /// the next event: the usage-only event Tollgate asked for still never reaches the client.
    @Test func anOversizedEventPassesAloneAndTheUsageEventAfterItIsStillDropped() {
        let big = "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\""
            + String(repeating: "a", count: SSEUsageFilter.maxEvent + 100_000) + "\"}}]}\n\n"
        let usage = "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n"
        let done = "data: [DONE]\n\n"
        let bytes = Array((big + usage + done).utf8)
        var f = SSEUsageFilter()
        var out: [UInt8] = []
        var start = 0
        var mostBehind = 0
        while start < bytes.count {
            let end = min(bytes.count, start + 65536)
            f.feed(bytes, start..<end, into: &out)
            mostBehind = max(mostBehind, end - out.count)
            start = end
        }
        f.finish(into: &out)
        #expect(String(decoding: out, as: UTF8.self) == big + done)
        // What the filter held back never grew past one event's limit plus one read.
        #expect(mostBehind <= SSEUsageFilter.maxEvent + 65536 + usage.utf8.count)
    }

    /// An oversized `/v1/completions` chunk still loses the zero `usage` member it ends with; a nested member of
    /// that name, or one in the middle, is not Ollama's and stays.
    @Test func anOversizedCompletionChunkLosesItsTrailingUsage() {
        let text = String(repeating: "b", count: SSEUsageFilter.maxEvent + 10)
        let chunk = "data: {\"id\":\"c\",\"choices\":[{\"text\":\"\(text)\",\"index\":0}],\"model\":\"m\""
        let usage = ",\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}"
        let done = "data: [DONE]\n\n"
        for split in [65536, 4000, 1 << 20] {
            let stream = Array((chunk + usage + "}\n\n" + done).utf8)
            var f = SSEUsageFilter()
            var out: [UInt8] = []
            var start = 0
            while start < stream.count {
                let end = min(stream.count, start + split)
                f.feed(stream, start..<end, into: &out)
                start = end
            }
            f.finish(into: &out)
            #expect(String(decoding: out, as: UTF8.self) == chunk + "}\n\n" + done, "split \(split)")
        }
        let nested = Array((chunk + ",\"x\":{\"usage\":{\"a\":1}}}\r\n\r\n").utf8)
        #expect(SSEUsageFilter.withoutTrailingUsage(nested) == nested)
        let middle = Array((chunk + usage + ",\"y\":1}\n\n").utf8)
        #expect(SSEUsageFilter.withoutTrailingUsage(middle) == middle)
    }

    @Test func anUnfinishedUsageOnlyEventAtTheEndIsDropped() {
        let text = "data: {\"id\":1}\n\ndata: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":9}}\n"
        #expect(filtered(text) == "data: {\"id\":1}\n\n")
    }
}
