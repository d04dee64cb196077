import FakeOllama
import Testing

/// Streams arrive line by line: fake-ollama in step mode produces line N+1 only after the test has read line N
/// through the proxy and allowed the next one, so any buffering in the proxy would hang (and fail) the test.
@Suite struct StreamingTests {
    private static let generate = #"{"model":"mistral:7b","prompt":"Why is the sky blue?"}"#
    private static let chat = #"{"model":"mistral:7b","stream":true,"messages":[{"role":"user","content":"hi"}]}"#

    /// A POST with a Content-Length body.
    static func post(_ path: String, _ body: String, extra: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\(extra)"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// Reads one chunk and checks it is framed exactly as fake-ollama frames one streamed line.
    private func readLineChunk(_ client: HTTPClient) throws -> String {
        let chunk = try client.readChunk()
        let data = try #require(chunk.data, "the stream ended early")
        #expect(chunk.raw == bytes(String(data.count, radix: 16) + "\r\n") + data + bytes("\r\n"))
        return String(decoding: data, as: UTF8.self)
    }

    @Test func ndjsonArrivesLineByLine() throws {
        try withProxyAndFake(tokens: 5) { proxy, fake in
            fake.stepMode = true
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(Self.post("/api/generate", Self.generate))
            fake.allowLines(1)
            let head = try client.readHead()
            #expect(head.status == 200)
            #expect(head.header("Content-Type") == "application/x-ndjson")
            #expect(head.isChunked)
            var lines: [String] = []
            while true {
                let line = try readLineChunk(client)
                #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
                lines.append(line)
                if line.contains(#""done":true"#) { break }
                try #require(lines.count <= 6, "no final line")
                fake.allowLines(1)
            }
            #expect(lines.count == 6)
            #expect(lines.dropLast().allSatisfy { $0.contains(#""done":false"#) })
            #expect(try client.readChunk().data == nil)
            // The connection stays usable for the next request.
            fake.stepMode = false
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func sseArrivesEventByEvent() throws {
        try withProxyAndFake(tokens: 4) { proxy, fake in
            fake.stepMode = true
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(Self.post("/v1/chat/completions", Self.chat))
            fake.allowLines(1)
            let head = try client.readHead()
            #expect(head.status == 200)
            #expect(head.header("Content-Type")?.hasPrefix("text/event-stream") == true)
            var events: [String] = []
            while true {
                let event = try readLineChunk(client)
                #expect(event.hasPrefix("data: ") && event.hasSuffix("\n\n"))
                events.append(event)
                if event.contains("data: [DONE]") { break }
                try #require(events.count <= 5, "no [DONE]")
                fake.allowLines(1)
            }
            #expect(events.count == 5)
            #expect(events.last?.hasSuffix("data: [DONE]\n\n") == true)
            #expect(try client.readChunk().data == nil)
        }
    }

    @Test(arguments: ["/api/generate", "/api/chat", "/v1/chat/completions", "/v1/completions"])
    func streamBytesMatchTheUpstream(path: String) throws {
        let body = path.hasPrefix("/v1/chat") ? Self.chat
            : path == "/v1/completions" ? #"{"model":"mistral:7b","prompt":"hi","stream":true}"#
            : path == "/api/chat" ? #"{"model":"mistral:7b","messages":[{"role":"user","content":"hi"}]}"#
            : Self.generate
        try withProxyAndFake(tokens: 3) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(Self.post(path, body))
            let proxied = try client.readResponse()
            let direct = HTTPClient(try PlainStream(port: fake.port))
            defer { direct.close() }
            try direct.send(Self.post(path, body).replacingHost(with: "127.0.0.1:\(fake.port)"))
            let straight = try direct.readResponse()
            #expect(proxied.status == 200)
            #expect(proxied.head.isChunked && straight.head.isChunked)
            #expect(proxied.rawBody == straight.rawBody)
        }
    }
}

extension String {
    /// The request with its "Host: localhost" line replaced.
    func replacingHost(with host: String) -> String {
        guard let range = range(of: "Host: localhost\r\n") else { return self }
        return replacingCharacters(in: range, with: "Host: \(host)\r\n")
    }
}
