import FakeOllama
import Testing

/// The flags that let several fake-ollamas stand for several backends: a name on every response, several models,
/// and what /api/ps reports loaded.
@Suite struct FakeOllamaBackendTests {
    private func withBackend(_ configure: (inout FakeOllamaConfig) -> Void, _ body: (FakeOllamaServer) throws -> Void) throws {
        var config = FakeOllamaConfig(host: "127.0.0.1", port: 0, tokens: 2)
        configure(&config)
        let server = try FakeOllamaServer(config: config)
        server.start()
        defer { server.stop() }
        try body(server)
    }

    @Test func nameIsOnEveryResponse() throws {
        try withBackend({ $0.name = "gpu-a" }) { server in
            let client = try RawClient(port: server.port)
            client.request("GET", "/api/version")
            #expect(try client.readResponse().header("X-Backend") == "gpu-a")
            client.request("POST", "/api/generate", body: #"{"model":"nope","prompt":"x"}"#)
            let missing = try client.readResponse()
            #expect(missing.status == 404)
            #expect(missing.header("X-Backend") == "gpu-a")
            client.request("POST", "/api/generate", body: generateBody)
            #expect(try client.readResponse().header("X-Backend") == "gpu-a")
        }
    }

    @Test func withoutANameThereIsNoBackendHeader() throws {
        try withBackend({ _ in }) { server in
            let client = try RawClient(port: server.port)
            client.request("GET", "/api/version")
            #expect(try client.readResponse().header("X-Backend") == nil)
        }
    }

    @Test func severalModelsAreListedAndServedAndLoadedIsReported() throws {
        try withBackend({
            $0.model = "mistral:7b"
            $0.extraModels = ["llama3"]
            $0.loaded = ["llama3"]
        }) { server in
            let client = try RawClient(port: server.port)
            client.request("GET", "/api/tags")
            let tags = String(decoding: try client.readResponse().body, as: UTF8.self)
            #expect(tags.contains(#""name":"mistral:7b""#))
            #expect(tags.contains(#""name":"llama3:latest""#))
            client.request("GET", "/api/ps")
            let ps = String(decoding: try client.readResponse().body, as: UTF8.self)
            #expect(ps.contains(#""name":"llama3:latest""#))
            #expect(!ps.contains("mistral"))
            client.request("POST", "/api/generate", body: #"{"model":"llama3","prompt":"x","stream":false}"#)
            #expect(try client.readResponse().status == 200)
            client.request("POST", "/api/generate", body: #"{"model":"gemma","prompt":"x","stream":false}"#)
            #expect(try client.readResponse().status == 404)
        }
    }

    @Test func loadedDefaultsToTheFirstModel() throws {
        try withBackend({ $0.extraModels = ["llama3"] }) { server in
            let client = try RawClient(port: server.port)
            client.request("GET", "/api/ps")
            let ps = String(decoding: try client.readResponse().body, as: UTF8.self)
            #expect(ps.contains(#""name":"mistral:7b""#))
            #expect(!ps.contains("llama3"))
        }
    }
}
