@testable import Tollgate
import Testing

@Suite("Model lists: /api/tags entries kept as sent, merged over backends, and /v1/models as Ollama writes it")
struct UpstreamsModelListTests {
    static let mistral = #"{"name":"mistral:7b","model":"mistral:7b","modified_at":"2024-05-01T10:00:00.5-07:00","size":4109865159,"digest":"61e88e884507","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"7.2B","quantization_level":"Q4_0"}}"#
    static let llama = #"{ "name" : "llama3:latest", "model":"llama3:latest", "modified_at":"2024-06-01T00:00:00Z", "size":1, "details":{"x":[1,{"y":null}], "z":true} }"#

    func entries(_ objects: [String]) throws -> [ModelEntry] {
        try #require(ModelListScanner.entries(in: Array(#"{"models":[\#(objects.joined(separator: ","))]}"#.utf8)))
    }

    @Test func entriesKeepEachObjectByteForByte() throws {
        let list = try entries([Self.mistral, Self.llama])
        #expect(list.map { String(decoding: $0.json, as: UTF8.self) } == [Self.mistral, Self.llama])
        #expect(list.map(\.key) == ["mistral:7b", "llama3:latest"])
        #expect(list.map(\.id) == ["mistral:7b", "llama3:latest"])
        // 2024-05-01T17:00:00Z, the fraction dropped.
        #expect(list.map(\.created) == [1_714_582_800, 1_717_200_000])
        // Whitespace and other top-level keys around the list are fine.
        let spaced = ModelListScanner.entries(in: Array(" {\"x\":{\"models\":1}, \"models\" : [ \(Self.llama) ] }\n".utf8))
        #expect(spaced?.map { String(decoding: $0.json, as: UTF8.self) } == [Self.llama])
        #expect(ModelListScanner.entries(in: Array(#"{"models":[]}"#.utf8)) == [])
    }

    @Test func anEntryAClientCouldReadUnderAnotherNameIsLeftOut() throws {
        // A key spelled with an escape, or one Go's encoding/json matches to "name" without regard to case, could
        // make a client read another name than the one the merged list is narrowed by.
        for key in [#"NAME"#, #"Model"#, #"n\u0061me"#] {
            let entry = #"{"name":"mistral:7b","model":"mistral:7b","\#(key)":"llama3:8b"}"#
            #expect(try entries([entry, Self.llama]).map(\.name) == ["llama3:latest"])
        }
    }

    @Test func notAListIsNil() {
        for body in [#"{"error":"boom"}"#, "<html>", #"{"models":{}}"#, #"{"models":["a"]}"#, #"{"models":[{"name":"a"}"#,
                     #"{"models":[{"name":"a"}]} x"#, #"{"models":[{"name":"a",}]}"#,
                     "{\"models\":[{\"d\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}]}"] {
            #expect(ModelListScanner.entries(in: Array(body.utf8)) == nil, "\(body)")
        }
    }

    @Test func mergingDedupesByNameFirstBackendWinsNewestFirst() throws {
        let b0 = try entries([#"{"name":"mistral:7b","model":"mistral:7b","modified_at":"2024-01-01T00:00:00Z","size":1}"#,
                              #"{"name":"Old","model":"old","modified_at":"2023-01-01T00:00:00Z"}"#])
        let b1 = try entries([#"{"name":"mistral:7b","model":"mistral:7b","modified_at":"2025-01-01T00:00:00Z","size":2}"#,
                              #"{"name":"llama3","model":"llama3","modified_at":"2024-01-01T00:00:00Z"}"#,
                              #"{"name":"old:latest","model":"old:latest","modified_at":"2026-01-01T00:00:00Z"}"#])
        let merged = ModelListing.merge([b0, b1])
        // mistral and old come from b0 (its sizes); llama3 only b1 has; same time: backend order.
        #expect(merged.map(\.id) == ["mistral:7b", "llama3", "old"])
        #expect(String(decoding: merged[0].json, as: UTF8.self).contains(#""size":1"#))
        #expect(String(decoding: ModelListing.tagsBody(merged), as: UTF8.self) ==
                #"{"models":["# + [b0[0], b1[1], b0[1]].map { String(decoding: $0.json, as: UTF8.self) }.joined(separator: ",") + "]}")
        #expect(String(decoding: ModelListing.tagsBody([]), as: UTF8.self) == #"{"models":[]}"#)
    }

    @Test func openAIListIsOllamasShape() throws {
        let list = try entries([#"{"name":"mistral:7b","model":"mistral:7b","modified_at":"2026-01-01T00:00:00Z"}"#,
                                #"{"name":"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M","model":"","modified_at":"2026-01-01T00:00:00+01:00"}"#,
                                #"{"name":"me/tuned"}"#])
        #expect(String(decoding: ModelListing.openAIBody(list), as: UTF8.self) ==
                #"{"object":"list","data":[{"id":"mistral:7b","object":"model","created":1767225600,"owned_by":"library"},"#
                + #"{"id":"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M","object":"model","created":1767222000,"owned_by":"bartowski"},"#
                + #"{"id":"me/tuned","object":"model","created":-62135596800,"owned_by":"me"}]}"# + "\n")
        // A Go nil slice: Ollama with no model answers "data":null.
        #expect(String(decoding: ModelListing.openAIBody([]), as: UTF8.self) == #"{"object":"list","data":null}"# + "\n")
    }

    @Test func namespacesAndTimesFollowOllama() {
        #expect(ModelEntry.namespace(of: "mistral") == "library")
        #expect(ModelEntry.namespace(of: "mistral:7b") == "library")
        #expect(ModelEntry.namespace(of: "user/model:tag") == "user")
        #expect(ModelEntry.namespace(of: "registry.ollama.ai/library/mistral:latest") == "library")
        #expect(ModelEntry.namespace(of: "localhost:5000/team/model") == "team")
        #expect(ModelEntry.namespace(of: "/model") == "!MISSING!")
        #expect(ModelEntry.unixSeconds("1970-01-01T00:00:00Z") == 0)
        #expect(ModelEntry.unixSeconds("1969-12-31T23:59:59.999Z") == -1)
        #expect(ModelEntry.unixSeconds("2000-02-29T12:00:00+05:30") == 951_805_800)
        #expect(ModelEntry.unixSeconds("2024-05-01 10:00:00Z") == nil)
        #expect(ModelEntry.unixSeconds("2024-05-01T10:00:00") == nil)
    }

    @Test func theSetListsHealthyBackendsOnlyAndNothingBeforeAPoll() throws {
        let s = BackendSet(backends: (0..<2).map { (UpstreamAddress(parsing: "http://127.0.0.1:\(21_000 + $0)")!, 1) },
                           queueLimit: 4, queueTimeoutMillis: 1_000, failuresToEject: 1)
        // No list read yet: nil, so the request is proxied as before.
        #expect(s.modelListing() == nil)
        s.updateListing(1, try entries([Self.llama]))
        #expect(s.modelListing()?.map(\.id) == ["llama3:latest"])
        s.updateListing(0, try entries([Self.mistral]))
        #expect(s.modelListing()?.map(\.id) == ["llama3:latest", "mistral:7b"])
        s.recordFailure(1, detail: "down")
        #expect(s.modelListing()?.map(\.id) == ["mistral:7b"])
        s.recordFailure(0, detail: "down")
        #expect(s.modelListing() == nil)
        s.recordSuccess(1)
        #expect(s.modelListing()?.map(\.id) == ["llama3:latest"])
    }
}
