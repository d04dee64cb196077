import FakeOllama
import Testing
import Tollgate

/// The model allowlist through the running proxy: an inference body must name an allowed model before anything
/// reaches Ollama; other models get 403 and bodies naming none 400, in the caller's API shape.
@Suite struct AdmissionExtraModelAllowlistTests {
    static let alice = Credential.basic("alice", "pw-a")

    /// Only fake-ollama's own model is allowed; authentication on (alice).
    static func withAllowlist(body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.modelAllowlist = ["mistral:7b"]
        }, body: body)
    }

    @Test func anAllowedModelIsProxied() throws {
        try Self.withAllowlist { proxy, fake in
            let generate = try proxy.fetch(Req.generate(Self.alice))
            #expect(generate.status == 200)
            #expect(finalOllamaCounts(generate) != nil, "\(generate.text)")
            let chat = try proxy.fetch(Req.post("/v1/chat/completions",
                                                #"{"model":"mistral:7b","messages":[{"role":"user","content":"hi"}]}"#, Self.alice))
            #expect(chat.status == 200, "\(chat.text)")
            #expect(fake.requests.map(\.target) == ["/api/generate", "/v1/chat/completions"])
            // The held body reached Ollama whole.
            #expect(fake.requests.first.map { String(decoding: $0.body, as: UTF8.self) } == #"{"model":"mistral:7b","prompt":"Why is the sky blue?"}"#)
        }
    }

    @Test func anotherModelIs403InTheFamilysShapeAndNothingReachesOllama() throws {
        try Self.withAllowlist { proxy, fake in
            let generate = try proxy.fetch(Req.post("/api/generate", #"{"model":"llama3:70b","prompt":"hi"}"#, Self.alice))
            expectError(generate, status: 403, family: .ollama)
            let chat = try proxy.fetch(Req.post("/v1/chat/completions",
                                                #"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#, Self.alice))
            expectError(chat, status: 403, family: .openAI)
            let embed = try proxy.fetch(Req.post("/api/embed", #"{"model":"nomic-embed-text","input":"hi"}"#, Self.alice))
            expectError(embed, status: 403, family: .ollama)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test func aBodyWithoutAModelIs400() throws {
        try Self.withAllowlist { proxy, fake in
            expectError(try proxy.fetch(Req.post("/api/generate", #"{"prompt":"hi"}"#, Self.alice)), status: 400, family: .ollama)
            expectError(try proxy.fetch(Req.post("/v1/chat/completions", #"{"messages":[]}"#, Self.alice)), status: 400, family: .openAI)
            // "model" as a value, not a key, names no model.
            expectError(try proxy.fetch(Req.post("/api/generate", #"{"prompt":"model"}"#, Self.alice)), status: 400, family: .ollama)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test func aChunkedBodyWithoutAModelIs400() throws {
        try Self.withAllowlist { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let body = #"{"prompt":"hi"}"#
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Transfer-Encoding: chunked\r\n\r\n"
                            + String(body.utf8.count, radix: 16) + "\r\n\(body)\r\n0\r\n\r\n")
            expectError(try client.readResponse(), status: 400, family: .ollama)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test func aChunkedBodyNamingAnAllowedModelIsProxied() throws {
        try Self.withAllowlist { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Transfer-Encoding: chunked\r\n\r\n"
                            + "15\r\n{\"model\":\"mistral:7b\"\r\n")
            try client.send("e\r\n,\"prompt\":\"x\"}\r\n0\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200, "\(response.text)")
            #expect(fake.requests.map { String(decoding: $0.body, as: UTF8.self) } == [#"{"model":"mistral:7b","prompt":"x"}"#])
        }
    }

    /// Chunk boundaries carry no meaning: a client streaming its body may split anywhere, even inside "model".
    @Test func aChunkBoundaryInsideTheModelKeyDoesNotMatter() throws {
        try Self.withAllowlist { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Transfer-Encoding: chunked\r\n\r\n"
                            + "7\r\n{\"model\r\ne\r\n\":\"mistral:7b\"\r\ne\r\n,\"prompt\":\"x\"}\r\n0\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200, "\(response.text)")
            #expect(fake.requests.map { String(decoding: $0.body, as: UTF8.self) } == [#"{"model":"mistral:7b","prompt":"x"}"#])
        }
    }

    /// While the body is held for its model, a client that stops sending is cut off like any stalled body, instead
    /// of holding the connection (and its buffer) for ever.
    @Test func aStalledBodyHeldForItsModelIsCutOff() throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.modelAllowlist = ["mistral:7b"]
            config.timeouts.clientBodyIdle = 0.3
        }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Content-Length: 200\r\n\r\n{\"prompt\":\"")
            let rest = try client.readToEOF()
            #expect(rest.isEmpty || String(decoding: rest, as: UTF8.self).hasPrefix("HTTP/1.1 408"))
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test(arguments: [true, false])
    func expectContinueGets100ThenTheVerdict(_ allowed: Bool) throws {
        try Self.withAllowlist { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let body = allowed ? #"{"model":"mistral:7b","prompt":"hi","stream":false}"# : #"{"model":"llama3:70b","prompt":"hi"}"#
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Content-Type: application/json\r\n"
                            + "Expect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            let interim = try client.readHead()
            #expect(interim.status == 100)
            try client.send(body)
            let response = try client.readResponse()
            if allowed {
                #expect(response.status == 200, "\(response.text)")
                #expect(fake.requests.count == 1)
                #expect(fake.requests.first?.header("Expect") == nil)
            } else {
                expectError(response, status: 403, family: .ollama)
                try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
            }
        }
    }

    @Test func aModelArrivingInASecondWriteStillWorks() throws {
        try Self.withAllowlist { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let body = #"{"prompt":"Why is the sky blue?","stream":false,"model":"mistral:7b"}"#
            let split = try #require(body.range(of: #""mod"#)).upperBound  // inside "model"
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Content-Type: application/json\r\n"
                            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body[..<split])
            try client.send(String(body[split...]))
            let response = try client.readResponse()
            #expect(response.status == 200, "\(response.text)")
            #expect(fake.requests.map { String(decoding: $0.body, as: UTF8.self) } == [body])
            // Same connection, forbidden model split the same way: 403, nothing more upstream.
            let forbidden = body.replacingFirst("mistral:7b", with: "llama3:70b")
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Content-Type: application/json\r\n"
                            + "Content-Length: \(forbidden.utf8.count)\r\n\r\n" + forbidden[..<split])
            try client.send(String(forbidden[split...]))
            expectError(try client.readResponse(), status: 403, family: .ollama)
            #expect(fake.requests.count == 1)
        }
    }

    /// Ollama decodes bodies with Go's encoding/json: the last of duplicate keys wins, keys match case-insensitively,
    /// and only the top-level "model" counts. A body whose model for Ollama is not allowed must not reach it,
    /// whatever else it says first.
    @Test(arguments: [
        #"{"model":"mistral:7b","model":"llama3:70b","prompt":"hi"}"#,
        #"{"options":{"model":"mistral:7b"},"model":"llama3:70b","prompt":"hi"}"#,
        #"{"model":"mistral:7b","MODEL":"llama3:70b","prompt":"hi"}"#,
        #"{"model":"mistral:7b","\u006dodel":"llama3:70b","prompt":"hi"}"#,
    ])
    func aBodyWhoseEffectiveModelIsNotAllowedNeverReachesOllama(_ body: String) throws {
        try Self.withAllowlist { proxy, fake in
            let response = try proxy.fetch(Req.post("/api/generate", body, Self.alice))
            #expect(response.status == 403 || response.status == 400, "got \(response.status): \(response.text)")
            #expect(fake.requests.isEmpty, "reached Ollama, which runs the last top-level model: \(body)")
        }
    }
}
