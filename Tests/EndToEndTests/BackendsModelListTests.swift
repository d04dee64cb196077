import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// Several backends: Tollgate lists every healthy backend's models itself.
@Suite struct BackendsModelListTests {
    /// A backend's own answer to `GET path`, straight from the fake.
    static func direct(_ fake: FakeOllamaServer, _ path: String) throws -> String {
        let client = HTTPClient(try PlainStream(port: fake.port))
        defer { client.close() }
        let r = try client.exchange("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(r.status == 200)
        return r.text
    }

    /// `text` from the last occurrence of `marker` on: a list's last element and the list's end.
    static func lastElement(_ text: String, from marker: String) throws -> Substring {
        let start = try #require(text.range(of: marker, options: .backwards)).lowerBound
        return text[start...]
    }

    @Test func modelListsAreTheUnionOfTheHealthyBackendsAndAnEjectedBackendsModelsGo() throws {
        try withBackends([FakeBackend(models: ["mistral:7b", "llama3"]), FakeBackend(models: ["mistral:7b", "gemma:2b"])],
                         configure: { $0.healthFails = 1 }) { proxy, fakes in
            let tags0 = try Self.direct(fakes[0], "/api/tags"), tags1 = try Self.direct(fakes[1], "/api/tags")
            let v1_0 = try Self.direct(fakes[0], "/v1/models"), v1_1 = try Self.direct(fakes[1], "/v1/models")
            let asked = fakes.map { $0.proxiedRequests.count }

            // b0's entries as it sent them, then the one only b1 has (mistral is b0's: first backend wins).
            let tags = try proxy.fetch(Req.get("/api/tags"))
            #expect(tags.status == 200)
            #expect(tags.backend == nil, "answered by a backend, not by Tollgate")
            #expect(tags.head.header("Content-Type") == "application/json; charset=utf-8")
            #expect(tags.head.header("X-Request-Id") != nil)
            #expect(tags.head.header("Strict-Transport-Security") == "max-age=63072000")
            #expect(tags.text == String(tags0.dropLast(2)) + "," + (try Self.lastElement(tags1, from: #"{"name":"#)))
            let names = try #require((try JSONSerialization.jsonObject(with: Data(tags.body)) as? [String: Any])?["models"] as? [[String: Any]])
            #expect(names.compactMap { $0["name"] as? String }.count == 3)

            // The OpenAI list in Ollama's own bytes (what each fake answers as Ollama does), merged the same way.
            let models = try proxy.fetch(Req.get("/v1/models"))
            #expect(models.status == 200)
            #expect(models.head.header("Content-Type") == "application/json")
            #expect(models.text == String(v1_0.dropLast(3)) + "," + (try Self.lastElement(v1_1, from: #"{"id":"#)))

            // HEAD: the same head, no body.
            let client = try proxy.tls()
            try client.send(Req.get("/api/tags", method: "HEAD"))
            let head = try client.readResponse(requestWasHead: true)
            client.close()
            #expect(head.status == 200)
            #expect(head.head.header("Content-Length") == String(tags.body.count))
            #expect(head.body.isEmpty)
            #expect(fakes.map { $0.proxiedRequests.count } == asked, "a list reached a backend")

            // b1 is ejected: its models go.
            fakes[1].fault = .refuse
            #expect(checkNow(proxy.server))
            #expect(try proxy.fetch(Req.get("/api/tags")).text == tags0)
            #expect(try proxy.fetch(Req.get("/v1/models")).text == v1_0)

            // None left: as before there was a list, a backend is asked, and there is none: 502.
            fakes[0].fault = .refuse
            #expect(checkNow(proxy.server))
            expectError(try proxy.fetch(Req.get("/api/tags")), status: 502, family: .ollama)
            expectError(try proxy.fetch(Req.get("/v1/models")), status: 502, family: .openAI)
        }
    }
    @Test func aMergedListShowsOnlyTheModelsTheCallerMayName() throws {
        try withBackends([FakeBackend(models: ["mistral:7b", "llama3"]), FakeBackend(models: ["gemma:2b"])],
                         configure: { $0.modelAllowlist = ["gemma:2b", "llama3"] }) { proxy, fakes in
            #expect(checkNow(proxy.server))
            let tags = try proxy.fetch(Req.get("/api/tags"))
            let names = try #require((try JSONSerialization.jsonObject(with: Data(tags.body)) as? [String: Any])?["models"] as? [[String: Any]])
            // "llama3" is listed as "llama3:latest": the gate reads exact names, so only gemma:2b is offered.
            #expect(names.compactMap { $0["name"] as? String } == ["gemma:2b"])
            let models = try proxy.fetch(Req.get("/v1/models"))
            let ids = try #require((try JSONSerialization.jsonObject(with: Data(models.body)) as? [String: Any])?["data"] as? [[String: Any]])
            #expect(ids.compactMap { $0["id"] as? String } == ["gemma:2b"])
        }
    }
}
