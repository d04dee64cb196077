import FakeOllama
import Foundation
import Testing

/// `POST /v1/responses` as Ollama serves the OpenAI Responses API: a response object, sequenced named events each in
/// its own chunk, and OpenAI-shaped errors.
@Suite struct FakeOllamaResponsesTests {
    @Test func answersAResponseObject() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/v1/responses", body: #"{"model":"mistral:7b","input":"hello there","instructions":"be brief","temperature":0.5,"max_output_tokens":100}"#)
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Content-Type") == "application/json")
            #expect(r.bodyText.hasPrefix(#"{"id":"resp_1","object":"response","created_at":1767225600,"completed_at":1767225600,"status":"completed","incomplete_details":null,"model":"mistral:7b","previous_response_id":null,"instructions":"be brief","output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"tok0 tok1 tok2 ","annotations":[],"logprobs":[]}]}],"error":null,"tools":[],"tool_choice":"auto""#))
            #expect(r.bodyText.hasSuffix("\n"))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
            #expect(object["temperature"] as? Double == 0.5)
            #expect(object["max_output_tokens"] as? Int == 100)
            let usage = try #require(object["usage"] as? [String: Any])
            // "be brief" + "hello there": (8 + 11 + 3) / 4 prompt tokens.
            #expect(usage["input_tokens"] as? Int == 5 && usage["output_tokens"] as? Int == 3 && usage["total_tokens"] as? Int == 8)
        }
    }

    @Test func streamsSequencedEventsOnePerChunk() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/v1/responses", body: #"{"model":"mistral:7b","stream":true,"input":[{"role":"user","content":[{"type":"input_text","text":"hello there"}]}]}"#)
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Content-Type") == "text/event-stream")
            #expect(r.sawZeroChunk)
            let events = try FakeOllamaAnthropicTests.events(r)
            #expect(events.map(\.name) == ["response.created", "response.in_progress", "response.output_item.added",
                                           "response.content_part.added", "response.output_text.delta",
                                           "response.output_text.delta", "response.output_text.delta",
                                           "response.output_text.done", "response.content_part.done",
                                           "response.output_item.done", "response.completed"])
            #expect(events.map { $0.data["sequence_number"] as? Int } == (0..<11).map { $0 })
            let deltas = events.compactMap { $0.name == "response.output_text.delta" ? $0.data["delta"] as? String : nil }
            #expect(deltas.joined() == "tok0 tok1 tok2 ")
            let completed = try #require(events.last?.data["response"] as? [String: Any])
            #expect(completed["status"] as? String == "completed")
            #expect((completed["usage"] as? [String: Any])?["output_tokens"] as? Int == 3)
            let created = try #require(events.first?.data["response"] as? [String: Any])
            #expect(created["status"] as? String == "in_progress" && created["usage"] is NSNull)
            // Go maps: keys sorted, so "sequence_number" comes before "text" and "type".
            #expect(r.bodyText.contains(#""output_index":0,"sequence_number":7,"text":"tok0 tok1 tok2 ","type":"response.output_text.done"}"#))
        }
    }

    @Test func errorsHaveTheOpenAIShape() throws {
        try withServer { server in
            let client = try RawClient(port: server.port)
            client.request("POST", "/v1/responses", body: #"{"input":"hi"}"#)
            let noModel = try client.readResponse()
            #expect(noModel.status == 400)
            #expect(noModel.bodyText == #"{"error":{"message":"model is required","type":"invalid_request_error","param":null,"code":null}}"# + "\n")
            client.request("POST", "/v1/responses", body: #"{"model":"llama3","input":"hi"}"#)
            let missing = try client.readResponse()
            #expect(missing.status == 404)
            #expect(missing.bodyText.hasPrefix(#"{"error":{"message":"model \"llama3\" not found, try pulling it first","type":"not_found_error""#))
            client.request("POST", "/v1/responses", body: "[1]")
            let bad = try client.readResponse()
            #expect(bad.status == 400)
            #expect(bad.bodyText.contains("cannot unmarshal array into Go value of type openai.ResponsesRequest"))
        }
    }
}
