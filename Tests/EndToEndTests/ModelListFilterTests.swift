import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// Model lists through one upstream, narrowed to the models the exchange may name (allow-list, a user's policy, an
/// API key's models, cloud models): the rest of Ollama's bytes as sent, and never an unfiltered list.
@Suite struct ModelListFilterTests {
    static let models = ["mistral:7b", "llama3:8b", "gpt-oss:120b-cloud"]

    static func fake() throws -> FakeOllamaServer {
        var config = FakeOllamaConfig(port: 0, tokens: 2, intervalMs: 0)
        config.model = models[0]
        config.extraModels = Array(models.dropFirst())
        let fake = try FakeOllamaServer(config: config)
        fake.start()
        return fake
    }

    static func names(_ text: String, list: String, field: String) throws -> [String] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let entries = (object[list] as? [[String: Any]]) ?? []
        return entries.compactMap { $0[field] as? String }
    }

    /// A proxy under `model-allow = mistral:7b` whose upstream answers `reply` (bytes as sent) once.
    static func withOneAnswer(_ reply: [UInt8], body: (Proxy) throws -> Void) throws {
        let upstream = try RawUpstream(reply: reply)
        let fake = try FakeOllamaHarness.start()
        defer { fake.stop() }
        try withProxy(configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
            $0.modelAllowlist = ["mistral:7b"]
        }, upstream: fake, body: body)
    }

    @Test func anAllowListShowsOnlyItsModelsInEveryShapeAndVersion() throws {
        let fake = try Self.fake()
        defer { fake.stop() }
        // Cloud models are off by default: the cloud model goes even though the allow-list names it.
        try withProxy(configure: { $0.modelAllowlist = ["mistral:7b", "gpt-oss:120b-cloud"] }, upstream: fake) { proxy in
            let direct = try BackendsModelListTests.direct(fake, "/api/tags")
            let tags = try proxy.fetch(Req.get("/api/tags"))
            #expect(tags.status == 200)
            // Held until whole, sent with the narrowed list's length.
            #expect(!tags.head.isChunked && tags.head.header("Content-Length") == String(tags.body.count))
            #expect(try Self.names(tags.text, list: "models", field: "name") == ["mistral:7b"])
            // The entry kept is Ollama's bytes: the list is the direct one with the others taken out.
            let entry = try #require(direct.range(of: #"{"name":"mistral:7b""#))
            let entryEnd = try #require(direct.range(of: #"},{"name":"llama3:8b""#, range: entry.upperBound..<direct.endIndex))
            #expect(tags.text == #"{"models":["# + String(direct[entry.lowerBound...entryEnd.lowerBound]) + "]}")

            let openAI = try proxy.fetch(Req.get("/v1/models"))
            #expect(openAI.status == 200 && openAI.head.header("Content-Type") == "application/json")
            #expect(try Self.names(openAI.text, list: "data", field: "id") == ["mistral:7b"])
            #expect(openAI.text.hasSuffix("}\n"))

            // HTTP/1.0: the list until the close.
            let old = try proxy.tls()
            defer { old.close() }
            let closed = try old.exchange("GET /api/tags HTTP/1.0\r\nHost: localhost\r\n\r\n")
            #expect(closed.status == 200 && closed.head.header("Content-Length") == String(closed.body.count))
            #expect(closed.text == tags.text)

            // HEAD: no list to narrow, so no length (the whole list's would tell its size).
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(Req.get("/api/tags", method: "HEAD"))
            let head = try client.readResponse(requestWasHead: true)
            #expect(head.status == 200 && head.head.header("Content-Length") == nil && head.body.isEmpty)
            // The connection goes on.
            #expect(try client.exchange(Req.get("/api/tags")).text == tags.text)
        }
    }

    @Test func theLoadedModelsListIsNarrowedToo() throws {
        // GET /api/ps lists the models loaded, in /api/tags' shape: a caller under an allow-list must not learn
        // there the models it may not name.
        var config = FakeOllamaConfig(port: 0, tokens: 2, intervalMs: 0)
        config.model = Self.models[0]
        config.extraModels = Array(Self.models.dropFirst())
        config.loaded = Self.models
        let fake = try FakeOllamaServer(config: config)
        fake.start()
        defer { fake.stop() }
        try withProxy(configure: { $0.modelAllowlist = ["mistral:7b"] }, upstream: fake) { proxy in
            let ps = try proxy.fetch(Req.get("/api/ps"))
            #expect(ps.status == 200 && ps.head.header("Content-Length") == String(ps.body.count))
            #expect(try Self.names(ps.text, list: "models", field: "name") == ["mistral:7b"])
            #expect(try Self.names(ps.text, list: "models", field: "model") == ["mistral:7b"])

            // Pipelined on one connection: each list narrowed, in order, and the connection goes on.
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(Req.get("/api/ps") + Req.get("/v1/models") + Req.get("/api/tags"))
            #expect(try client.readResponse().text == ps.text)
            #expect(try Self.names(client.readResponse().text, list: "data", field: "id") == ["mistral:7b"])
            #expect(try Self.names(client.readResponse().text, list: "models", field: "name") == ["mistral:7b"])
            #expect(try client.exchange(Req.get("/api/ps")).text == ps.text)
        }
    }

    @Test func anAllowListedCallerCannotAskForAModelItMayNotNameByItsName() throws {
        // The list hides llama3:8b; asking for it by name must not tell that it is there.
        let fake = try Self.fake()
        defer { fake.stop() }
        try withProxy(configure: { $0.modelAllowlist = ["mistral:7b"] }, upstream: fake) { proxy in
            #expect(try proxy.fetch(Req.get("/v1/models/mistral:7b")).status == 200)
            expectError(try proxy.fetch(Req.get("/v1/models/llama3:8b")), status: 403, family: .openAI)
            #expect(try proxy.fetch(Req.post("/api/show", #"{"model":"mistral:7b"}"#)).status == 200)
            expectError(try proxy.fetch(Req.post("/api/show", #"{"model":"llama3:8b"}"#)), status: 403, family: .ollama)
            expectError(try proxy.fetch(Req.post("/api/show", #"{"name":"llama3:8b"}"#)), status: 403, family: .ollama)
        }
    }

    @Test func anAllowListThatNamesNothingListedLeavesEmptyListsInOllamasShapes() throws {
        let fake = try Self.fake()
        defer { fake.stop() }
        try withProxy(configure: { $0.modelAllowlist = ["qwen:7b"] }, upstream: fake) { proxy in
            let tags = try proxy.fetch(Req.get("/api/tags")), openAI = try proxy.fetch(Req.get("/v1/models"))
            #expect(tags.text == #"{"models":[]}"#)
            #expect(openAI.text == #"{"object":"list","data":null}"# + "\n")
        }
    }

    @Test func withNothingKeptFromTheCallerTheListPassesAsSent() throws {
        let fake = try Self.fake()
        defer { fake.stop() }
        try withProxy(configure: { $0.cloudModels = .all }, upstream: fake) { proxy in
            let tags = try proxy.fetch(Req.get("/api/tags"))
            #expect(tags.head.header("Content-Length") != nil)
            #expect(tags.text == (try BackendsModelListTests.direct(fake, "/api/tags")))
            #expect(try proxy.fetch(Req.get("/v1/models")).text == (try BackendsModelListTests.direct(fake, "/v1/models")))
        }
    }

    @Test func aUsersPolicyNarrowsHerListOnly() throws {
        let fake = try Self.fake()
        defer { fake.stop() }
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n")
        let policies = try ServerConfig(resolved: ConfigResolver.resolve(flags: ["policy": ["alice models=llama3:8b"]],
                                                                          environment: [:], file: nil), cores: 1).policies
        try withProxy(configure: { config in
            config.users = users
            config.cloudModels = .all
            config.policies = policies
        }, upstream: fake) { proxy in
            let alice = try proxy.fetch(Req.get("/api/tags", Credential.basic("alice", "pw-a")))
            #expect(try Self.names(alice.text, list: "models", field: "name") == ["llama3:8b"])
            let bob = try proxy.fetch(Req.get("/api/tags", Credential.basic("bob", "pw-b")))
            #expect(try Self.names(bob.text, list: "models", field: "name") == Self.models)
        }
    }

    @Test func aChunkedListIsNarrowedAcrossItsChunks() throws {
        let body = #"{"models":[{"name":"llama3:8b","model":"llama3:8b"},{"name":"mistral:7b","model":"mistral:7b"}]}"#
        let cut = body.index(body.startIndex, offsetBy: 30)
        let first = String(body[..<cut]), second = String(body[cut...])
        let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
            + String(first.utf8.count, radix: 16) + "\r\n" + first + "\r\n"
            + String(second.utf8.count, radix: 16) + "\r\n" + second + "\r\n0\r\n\r\n"
        try Self.withOneAnswer(bytes(reply)) { proxy in
            let tags = try proxy.fetch(Req.get("/api/tags"))
            #expect(tags.status == 200)
            #expect(tags.text == #"{"models":[{"name":"mistral:7b","model":"mistral:7b"}]}"#)
        }
    }

    @Test func aCloseDelimitedListIsNarrowedAtTheClose() throws {
        let body = #"{"models":[{"name":"llama3:8b","model":"llama3:8b"},{"name":"mistral:7b","model":"mistral:7b"}]}"#
        try Self.withOneAnswer(bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + body)) { proxy in
            let client = try proxy.tls()
            defer { client.close() }
            let tags = try client.exchange(Req.get("/api/tags"))
            #expect(tags.status == 200 && tags.head.header("Content-Length") == String(tags.body.count))
            #expect(tags.text == #"{"models":[{"name":"mistral:7b","model":"mistral:7b"}]}"#)
            // With its length, the client's connection can go on.
            #expect(tags.head.header("Connection") == nil)
        }
    }

    @Test(arguments: [
        ("Content-Length: 12\r\n\r\n{\"models\":[", "not a whole list"),
        ("Content-Length: 9\r\n\r\n<html>hi!", "not a list"),
        ("Content-Length: 15\r\n\r\n{\"models\":[1]}\n", "entries not objects"),
    ])
    func aListThatCannotBeReadIsAnUpstreamErrorNeverPassed(rest: String, label: String) throws {
        try Self.withOneAnswer(bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + rest)) { proxy in
            // Nothing was sent before the list was whole: the client gets Ollama's error shape.
            let response = try proxy.fetch(Req.get("/api/tags"))
            expectError(response, status: 502, family: .ollama)
            #expect(response.text.contains("model list") && !response.text.contains("<html>") && !response.text.contains("[1]"),
                    "\(label): \(response.text)")
        }
    }

    @Test func aListWithAnotherSuccessStatusIsNarrowedToo() throws {
        let body = #"{"models":[{"name":"llama3:8b","model":"llama3:8b"},{"name":"mistral:7b","model":"mistral:7b"}]}"#
        try Self.withOneAnswer(bytes("HTTP/1.1 203 Non-Authoritative Information\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body)) { proxy in
            let tags = try proxy.fetch(Req.get("/api/tags"))
            #expect(tags.status == 203)
            #expect(tags.text == #"{"models":[{"name":"mistral:7b","model":"mistral:7b"}]}"#)
        }
    }

    @Test func aCompressedListIsAnUpstreamError() throws {
        try Self.withOneAnswer(bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + "Content-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc")) { proxy in
            expectError(try proxy.fetch(Req.get("/api/tags")), status: 502, family: .ollama)
        }
    }
}
