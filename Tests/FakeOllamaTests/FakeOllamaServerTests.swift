import FakeOllama
import Glibc
import Testing

/// Starts a server on a free port, runs `body`, and always stops it.
func withServer(tokens: Int = 3, intervalMs: Int = 0, _ body: (FakeOllamaServer) throws -> Void) throws {
    let server = try FakeOllamaServer(config: FakeOllamaConfig(host: "127.0.0.1", port: 0, tokens: tokens,
                                                               intervalMs: intervalMs))
    server.start()
    defer { server.stop() }
    try body(server)
}

let generateBody = #"{"model":"mistral:7b","prompt":"hello"}"#

/// How long a test waits for something the server is sure to do; only a broken server runs it out.
let patience = Double(RawClient.timeoutSeconds)

@Suite struct FakeOllamaServerTests {
    @Test func hostCheckRefusesForeignHostWithEmpty403() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("GET", "/api/tags", host: "evil.example.com")
            let refused = try client.readResponse()
            #expect(refused.status == 403)
            #expect(refused.body.isEmpty)
            #expect(refused.header("Content-Length") == "0")
            for host in ["localhost", "127.0.0.1:11434", "[::1]:11434", "10.1.2.3", "box.internal", "a.localhost:80"] {
                client.request("GET", "/api/tags", host: host)
                #expect(try client.readResponse().status == 200, "Host: \(host)")
            }
            client.request("GET", "/api/tags", extra: "Origin: https://evil.example.com\r\n")
            #expect(try client.readResponse().status == 403)
        }
    }

    @Test func streamsOneLinePerChunkAndEndsWithDoneLine() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/api/generate", body: generateBody)
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Content-Type") == "application/x-ndjson")
            #expect(r.sawZeroChunk)
            #expect(r.chunks.count == 4)
            let lines = r.chunks.map { String(decoding: $0, as: UTF8.self) }
            #expect(lines[0] == #"{"model":"mistral:7b","created_at":"2026-01-01T00:00:00Z","response":"tok0 ","done":false}"# + "\n")
            #expect(lines.allSatisfy { $0.hasSuffix("}\n") && $0.filter { $0 == "\n" }.count == 1 })
            let last = lines[3]
            #expect(last.contains(#""done":true,"done_reason":"stop","context":["#))
            for field in ["total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
                          "eval_duration"] {
                #expect(last.contains("\"\(field)\":"))
            }
            #expect(last.contains(#""eval_count":3,"#))
        }
    }

    @Test func numPredictOverridesTokenCount() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/api/chat", body: #"{"model":"mistral:7b","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":5}}"#)
            let r = try client.readResponse()
            #expect(r.chunks.count == 6)
            #expect(r.bodyText.contains(#""message":{"role":"assistant","content":"tok4 "},"done":false}"#))
        }
    }

    @Test func streamFalseGivesOneJSONBody() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/api/generate", body: #"{"model":"mistral:7b","prompt":"hello","stream":false}"#)
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Content-Type") == "application/json; charset=utf-8")
            #expect(r.header("Transfer-Encoding") == nil)
            #expect(r.bodyText.hasPrefix(#"{"model":"mistral:7b","created_at":"2026-01-01T00:00:00Z","response":"tok0 tok1 tok2 ","done":true,"done_reason":"stop""#))
        }
    }

    @Test func openAIStreamIsSSEEndingWithDone() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/v1/chat/completions", body: #"{"model":"mistral:7b","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#)
            let r = try client.readResponse()
            #expect(r.header("Content-Type") == "text/event-stream")
            #expect(r.chunks.count == 4)
            #expect(r.bodyText.hasSuffix("data: [DONE]\n\n"))
            #expect(r.bodyText.contains(#""choices":[{"index":0,"delta":{},"finish_reason":"stop"}]"#))
            #expect(r.bodyText.contains(#""usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}"#))
            let events = r.bodyText.split(separator: "\n\n", omittingEmptySubsequences: true)
            #expect(events.allSatisfy { $0.hasPrefix("data: ") })
        }
    }

    @Test func errorsHaveOllamaAndOpenAIShapes() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/api/generate", body: #"{"model":"llama3","prompt":"x"}"#)
            let missing = try client.readResponse()
            #expect(missing.status == 404)
            #expect(missing.bodyText == #"{"error":"model \"llama3\" not found, try pulling it first"}"#)
            client.request("POST", "/api/chat", body: "{nope")
            #expect(try client.readResponse().status == 400)
            client.request("POST", "/v1/chat/completions", body: "[1]")
            let bad = try client.readResponse()
            #expect(bad.status == 400)
            #expect(bad.bodyText.hasPrefix(#"{"error":{"message":"#))
            client.request("GET", "/nope")
            let unknown = try client.readResponse()
            #expect(unknown.status == 404 && unknown.bodyText == "404 page not found")
            client.request("GET", "/api/generate")
            #expect(try client.readResponse().status == 405)
        }
    }

    @Test func stepModeReleasesLinesOnlyWhenAllowed() throws {
        try withServer { server in
            server.stepMode = true
            let client = try RawClient(port: server.port)
            client.request("POST", "/api/generate", body: generateBody)
            #expect(server.waitForRequests(1, timeoutSeconds: patience))
            server.allowLines(1)
            let head = try client.readHead()
            #expect(head.status == 200)
            let first = try #require(try client.readChunk())
            #expect(String(decoding: first, as: UTF8.self).contains("tok0"))
            #expect(!client.hasPendingBytes())
            server.allowLines(1)
            let second = try #require(try client.readChunk())
            #expect(String(decoding: second, as: UTF8.self).contains("tok1"))
            server.allowLines(2)
            _ = try #require(try client.readChunk())
            let done = try #require(try client.readChunk())
            #expect(String(decoding: done, as: UTF8.self).contains(#""done":true"#))
            #expect(try client.readChunk() == nil)
        }
    }

    @Test func clientClosingMidStreamCountsCancellation() throws {
        try withServer(tokens: 5, intervalMs: 600_000) { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/api/generate", body: generateBody)
            _ = try client.readHead()
            _ = try client.readChunk()
            Glibc.shutdown(client.fd, Int32(SHUT_RDWR))
            #expect(server.waitForCancellations(1, timeoutSeconds: patience))
            #expect(server.cancellations == 1)
        }
    }

    @Test func clientClosingInStepModeCountsCancellation() throws {
        try withServer { server in
            server.stepMode = true
            let client = try RawClient(port: server.port)
            client.request("POST", "/v1/completions", body: #"{"model":"mistral:7b","prompt":"x","stream":true}"#)
            #expect(server.waitForRequests(1, timeoutSeconds: patience))
            Glibc.shutdown(client.fd, Int32(SHUT_RDWR))
            #expect(server.waitForCancellations(1, timeoutSeconds: patience))
        }
    }

    @Test func dieAfterLinesTruncatesWithoutZeroChunk() throws {
        try withServer { server in
            server.fault = .dieAfterLines(2)
            let client = try RawClient(port: server.port)
            client.request("POST", "/api/generate", body: generateBody)
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.chunks.count == 2)
            #expect(!r.sawZeroChunk)
            #expect(client.readsEOF())
            #expect(server.cancellations == 0)
        }
    }

    @Test func keepAliveServesTwoRequestsOnOneConnection() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/api/generate", body: generateBody)
            #expect(try client.readResponse().sawZeroChunk)
            client.request("GET", "/api/version")
            let version = try client.readResponse()
            #expect(version.bodyText == #"{"version":"0.12.0"}"#)
            #expect(server.requests.count == 2)
            #expect(server.openConnections == 1)
        }
    }

    @Test func recordsChunkedRequestBodies() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            let body = #"{"model":"mistral:7b","prompt":"hi","stream":false}"#
            let half = body.utf8.count / 2
            let a = String(body.prefix(half)), b = String(body.dropFirst(half))
            client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                + String(a.utf8.count, radix: 16) + "\r\n" + a + "\r\n"
                + String(b.utf8.count, radix: 16) + "\r\n" + b + "\r\n0\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            let recorded = try #require(server.requests.first)
            #expect(recorded.method == "POST" && recorded.target == "/api/generate" && recorded.version == "HTTP/1.1")
            #expect(String(decoding: recorded.body, as: UTF8.self) == body)
            #expect(recorded.header("transfer-encoding") == "chunked")
        }
    }

    @Test func hangHoldsUntilStopAndRefuseStopsListening() throws {
        let server = try FakeOllamaServer(config: FakeOllamaConfig(port: 0))
        server.start()
        defer { server.stop() }
        server.fault = .hang
        let client = try RawClient(port: server.port)
        client.request("GET", "/api/version")
        #expect(server.waitForRequests(1, timeoutSeconds: patience))
        #expect(!client.hasPendingBytes())
        server.fault = .refuse
        #expect(throws: RawClient.Failure.self) { _ = try RawClient(port: server.port) }
        server.fault = .none
        let again = try RawClient(port: server.port)
        again.request("GET", "/")
        #expect(try again.readResponse().bodyText == "Ollama is running")
        server.stop()
        #expect(client.readsEOF())
        #expect(server.waitForOpenConnections(0, timeoutSeconds: patience))
    }

    @Test func portTakenThrowsClearError() throws {
        try withServer { server in
            #expect(throws: FakeOllamaError.self) {
                _ = try FakeOllamaServer(config: FakeOllamaConfig(port: server.port))
            }
        }
    }
}
