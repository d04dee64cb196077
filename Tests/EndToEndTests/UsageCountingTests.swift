import FakeOllama
import Foundation
import Testing
import Tollgate

/// Token counts through a real proxy for every inference route and mode (read back from the access log), and the
/// usage Tollgate asks streamed OpenAI calls for: sent upstream, removed before the client sees it.
@Suite struct UsageCountingTests {
    static func withLog(_ body: (Proxy, FakeOllamaServer, String) throws -> Void) throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        try withProxyAndFake(tokens: 5, configure: { config in
            config.accessLog = .json
            config.accessLogPath = log
        }, body: { proxy, fake in try body(proxy, fake, log) })
    }

    static let messages = #""messages":[{"role":"user","content":"say \"eval_count\": 0"}]"#

    /// Route, body, the completion count fake-ollama (5 tokens a generation) reports.
    static let cases: [(String, String, Int)] = [
        ("/api/generate", #"{"model":"mistral:7b","prompt":"\"done\":true,\"eval_count\":0"}"#, 5),
        ("/api/generate", #"{"model":"mistral:7b","prompt":"hi","stream":false}"#, 5),
        ("/api/chat", #"{"model":"mistral:7b",\#(messages)}"#, 5),
        ("/api/chat", #"{"model":"mistral:7b","stream":false,\#(messages)}"#, 5),
        ("/api/generate", #"{"model":"mistral:7b","prompt":"hi","options":{"num_predict":3}}"#, 3),
        ("/api/embed", #"{"model":"mistral:7b","input":"some text to embed"}"#, 0),
        ("/v1/chat/completions", #"{"model":"mistral:7b",\#(messages)}"#, 5),
        ("/v1/chat/completions", #"{"model":"mistral:7b","stream":true,\#(messages)}"#, 5),
        ("/v1/chat/completions", #"{"model":"mistral:7b","stream":true,"stream_options":{"include_usage":true},\#(messages)}"#, 5),
        ("/v1/completions", #"{"model":"mistral:7b","prompt":"hi","max_tokens":2}"#, 2),
        ("/v1/completions", #"{"model":"mistral:7b","prompt":"hi","stream":true}"#, 5),
        ("/v1/embeddings", #"{"model":"mistral:7b","input":"some text"}"#, 0),
        ("/v1/responses", #"{"model":"mistral:7b","input":"hi"}"#, 5),
        ("/v1/responses", #"{"model":"mistral:7b","input":"hi","stream":true}"#, 5),
        ("/v1/messages", #"{"model":"mistral:7b","max_tokens":4,\#(messages)}"#, 4),
        ("/v1/messages", #"{"model":"mistral:7b","max_tokens":100,"stream":true,\#(messages)}"#, 5),
    ]

    @Test func everyRouteAndModeIsCounted() throws {
        try Self.withLog { proxy, _, log in
            for (path, body, completion) in Self.cases {
                let response = try proxy.fetch(Req.post(path, body))
                #expect(response.status == 200, "\(path) \(body): \(response.text)")
            }
            let objects = accessLogObjects(OpsFiles.waitForLines(log, count: Self.cases.count))
            #expect(objects.count == Self.cases.count)
            for ((path, body, completion), object) in zip(Self.cases, objects) {
                #expect(object?["path"] as? String == path)
                #expect(object?["completion_tokens"] as? Int == completion, "\(path) \(body)")
                #expect((object?["prompt_tokens"] as? Int ?? 0) >= 1, "\(path) \(body)")
            }
        }
    }

    @Test func aStreamWithoutUsageIsAskedForItAndTheClientSeesNone() throws {
        try Self.withLog { proxy, fake, log in
            let body = #"{"model":"mistral:7b","stream":true,\#(Self.messages)}"#
            let response = try proxy.fetch(Req.post("/v1/chat/completions", body))
            #expect(response.status == 200)
            #expect(!response.text.contains("usage"), "\(response.text)")
            #expect(response.text.hasSuffix("data: [DONE]\n\n"))
            let sent = try #require(fake.requests.last)
            let upstream = String(decoding: sent.body, as: UTF8.self)
            #expect(upstream == #"{"stream_options":{"include_usage":true},"model":"mistral:7b","stream":true,\#(Self.messages)}"#)
            #expect(sent.header("Content-Length") == String(sent.body.count))
            let object = try #require(accessLogObjects(OpsFiles.waitForLines(log, count: 1)).first ?? nil)
            #expect(object["completion_tokens"] as? Int == 5)
        }
    }

    @Test func aChunkedBodyThatIsRewrittenGoesWithItsLength() throws {
        try withProxyAndFake { proxy, fake in
            let body = #"{"model":"mistral:7b","prompt":"hi","stream":true}"#
            let split = body.utf8.count / 2
            let first = String(body.prefix(split)), second = String(body.dropFirst(split))
            let request = "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                + String(first.utf8.count, radix: 16) + "\r\n" + first + "\r\n"
                + String(second.utf8.count, radix: 16) + "\r\n" + second + "\r\n0\r\n\r\n"
            let response = try proxy.fetch(request)
            #expect(response.status == 200)
            #expect(!response.text.contains("usage"), "\(response.text)")
            let sent = try #require(fake.requests.last)
            #expect(sent.header("Transfer-Encoding") == nil)
            #expect(sent.header("Content-Length") == String(sent.body.count))
            #expect(String(decoding: sent.body, as: UTF8.self).hasPrefix(#"{"stream_options":{"include_usage":true},"#))
        }
    }

    @Test func aClientThatAsksForUsageGetsItOnce() throws {
        try withProxyAndFake { proxy, fake in
            let body = #"{"model":"mistral:7b","stream":true,"stream_options":{"include_usage":true},\#(Self.messages)}"#
            let response = try proxy.fetch(Req.post("/v1/chat/completions", body))
            #expect(response.text.components(separatedBy: #""usage""#).count == 2, "\(response.text)")
            #expect(String(decoding: try #require(fake.requests.last).body, as: UTF8.self) == body)
        }
    }

    @Test func anEventStreamWithALengthGoesChunkedWithoutTheUsage() throws {
        let events = "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
        let usage = "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n"
        let body = events + usage + "data: [DONE]\n\n"
        let upstream = try RawUpstream(reply: bytes("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body))
        let fake = try FakeOllamaHarness.start()
        defer { fake.stop() }
        try withProxy(configure: { $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")! },
                      upstream: fake) { proxy in
            let response = try proxy.fetch(Req.post("/v1/chat/completions", #"{"model":"mistral:7b","stream":true}"#))
            #expect(response.status == 200)
            #expect(response.head.isChunked)
            #expect(response.text == events + "data: [DONE]\n\n")
            #expect(String(decoding: upstream.received().afterHead, as: UTF8.self).contains(#""include_usage":true"#))
        }
    }

    @Test func anAmbiguousStreamRequestIsRefusedInTheCallersShape() throws {
        try withProxyAndFake { proxy, fake in
            let before = fake.requests.count
            let response = try proxy.fetch(Req.post("/v1/chat/completions", #"{"model":"mistral:7b","stream":true,"Stream_Options":{}}"#))
            expectError(response, status: 400, family: .openAI)
            #expect(fake.requests.count == before)
        }
    }

    @Test func requestsWithNothingToChangeGoAsSent() throws {
        try withProxyAndFake { proxy, fake in
            let body = #"{ "model" : "mistral:7b", "prompt":"hi", "options":{"num_predict":2} }"#
            #expect(try proxy.fetch(Req.post("/api/generate", body)).status == 200)
            #expect(String(decoding: try #require(fake.requests.last).body, as: UTF8.self) == body)
            let response = try proxy.fetch(Req.get("/api/tags"))
            #expect(response.head.header("X-Tollgate-Lowered") == nil)
        }
    }
}
