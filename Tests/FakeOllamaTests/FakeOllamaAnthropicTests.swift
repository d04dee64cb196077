import FakeOllama
import Foundation
import Testing

/// `POST /v1/messages` as Ollama serves the Anthropic Messages API: a message object, named server-sent events each
/// in its own chunk, and Anthropic-shaped errors.
@Suite struct FakeOllamaAnthropicTests {
    static let messages = #""messages":[{"role":"user","content":"hello there"}]"#

    /// The `event:` names and `data:` objects of a server-sent event stream, one per chunk.
    static func events(_ r: RawClient.Response) throws -> [(name: String, data: [String: Any])] {
        try r.chunks.map { chunk in
            let text = String(decoding: chunk, as: UTF8.self)
            #expect(text.hasSuffix("\n\n") && text.components(separatedBy: "\n\n").count == 2, "one event per chunk: \(text)")
            let lines = text.split(separator: "\n")
            let name = try #require(lines.first.flatMap { $0.hasPrefix("event: ") ? String($0.dropFirst(7)) : nil })
            let data = try #require(lines.dropFirst().first.flatMap { $0.hasPrefix("data: ") ? $0.dropFirst(6) : nil })
            let object = try #require(try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any])
            #expect(object["type"] as? String == name)
            return (name, object)
        }
    }

    @Test func answersAMessageObject() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/v1/messages", body: #"{"model":"mistral:7b","max_tokens":64,"# + Self.messages + "}")
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Content-Type") == "application/json")
            #expect(r.bodyText == #"{"id":"msg_000000000000000000000001","type":"message","role":"assistant","model":"mistral:7b","content":[{"type":"text","text":"tok0 tok1 tok2 "}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":3}}"# + "\n")
        }
    }

    @Test func maxTokensBelowTheAnswerStopsIt() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/v1/messages", body: #"{"model":"mistral:7b","max_tokens":2,"system":[{"type":"text","text":"be brief"}],"# + Self.messages + "}")
            let r = try client.readResponse()
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
            #expect(object["stop_reason"] as? String == "max_tokens")
            #expect(object["content"] as? [[String: Any]] != nil)
            // The system prompt is part of the chat's prompt: (8 + 11 bytes + 3) / 4.
            #expect((object["usage"] as? [String: Any])?["input_tokens"] as? Int == 5)
        }
    }

    @Test func streamsNamedEventsOnePerChunk() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/v1/messages", body: #"{"model":"mistral:7b","max_tokens":64,"stream":true,"# + Self.messages + "}")
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Content-Type") == "text/event-stream")
            #expect(r.header("Cache-Control") == "no-cache")
            #expect(r.sawZeroChunk)
            let events = try Self.events(r)
            #expect(events.map(\.name) == ["message_start", "content_block_start", "content_block_delta",
                                           "content_block_delta", "content_block_delta", "content_block_stop",
                                           "message_delta", "message_stop"])
            let text = events.compactMap { ($0.data["delta"] as? [String: Any])?["text"] as? String }.joined()
            #expect(text == "tok0 tok1 tok2 ")
            let start = try #require(events.first?.data["message"] as? [String: Any])
            #expect(start["content"] as? [Any] != nil && (start["content"] as? [Any])?.isEmpty == true)
            // message_start carries Ollama's estimate ("user" + "hello there" = 15 bytes, / 4).
            #expect((start["usage"] as? [String: Any])?["input_tokens"] as? Int == 3)
            let delta = events[6].data
            #expect((delta["delta"] as? [String: Any])?["stop_reason"] as? String == "end_turn")
            #expect((delta["usage"] as? [String: Any])?["output_tokens"] as? Int == 3)
            #expect(r.bodyText.contains(#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tok0 "}}"#))
        }
    }

    @Test func errorsHaveTheAnthropicShape() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/v1/messages", body: #"{"model":"mistral:7b","# + Self.messages + "}")
            let noMax = try client.readResponse()
            #expect(noMax.status == 400)
            #expect(noMax.header("Content-Type") == "application/json; charset=utf-8")
            #expect(noMax.bodyText == #"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens is required and must be positive"},"request_id":"req_000000000000000000000001"}"#)
            client.request("POST", "/v1/messages", body: #"{"model":"mistral:7b","max_tokens":5,"messages":[]}"#)
            #expect(try client.readResponse().bodyText.contains(#""message":"messages is required""#))
            client.request("POST", "/v1/messages", body: "")
            #expect(try client.readResponse().bodyText.contains(#""message":"EOF""#))
            client.request("POST", "/v1/messages", body: #"{"model":"llama3","max_tokens":5,"stream":true,"# + Self.messages + "}")
            let missing = try client.readResponse()
            #expect(missing.status == 404)
            #expect(missing.header("Content-Type") == "application/json")
            #expect(missing.bodyText == #"{"type":"error","error":{"type":"not_found_error","message":"model \"llama3\" not found, try pulling it first"},"request_id":"req_000000000000000000000001"}"# + "\n")
            client.request("GET", "/v1/messages")
            #expect(try client.readResponse().status == 405)
        }
    }
}
