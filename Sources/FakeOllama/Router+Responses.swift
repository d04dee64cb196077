import Glibc

/// `POST /v1/responses`, the OpenAI Responses API as Ollama serves it (middleware/openai.go's `ResponsesMiddleware`
/// turning the request into a chat, openai/responses.go turning the chat back): a `response` object, or with
/// `"stream": true` the named events `response.created`, `response.in_progress`, `response.output_item.added`,
/// `response.content_part.added`, `response.output_text.delta`…, `response.output_text.done`,
/// `response.content_part.done`, `response.output_item.done`, `response.completed`, each flushed on its own and
/// numbered by `sequence_number`. Errors have the OpenAI shape.
///
/// The streamed objects are Go maps, so their keys come sorted; the complete response is a Go struct, in field
/// order. Values the request chose (tools, a text format's schema) are echoed with sorted keys.
extension Router {
    static let responseID = "resp_1"
    static let responseItemID = "msg_1"

    func openAIResponses(_ request: Request) -> Reply {
        let body: RequestBody
        switch RequestBody.parse(request.body, goType: "openai.ResponsesRequest") {
        case .failure(let f): return openAIError(400, f.message(openAI: true), encoder: false)
        case .success(let b): body = b
        }
        let stream = body.bool("stream") ?? false
        // The middleware sets its streaming headers before the chat handler can refuse the model.
        let kept = stream ? Self.sseHeaders(request).filter { $0.0 != "Content-Type" } : []
        let model = body.string("model") ?? ""
        if model.isEmpty { return Self.adding(kept, to: openAIError(400, "model is required", encoder: true)) }
        if !catalog.matches(model) { return Self.adding(kept, to: openAIError(404, notFound(model), encoder: true)) }
        let (messages, promptBytes) = Self.responsesInput(body)
        var g = cappedGeneration(model: model, stream: stream, limit: body.int("max_output_tokens"),
                                 promptBytes: promptBytes)
        if messages == 0 {
            // Ollama's chat handler answers a chat without messages at once ("load"), with no tokens either way.
            g.count = 0
            g.promptTokens = 0
        }
        let echo = ResponseEcho(body)
        let now = unixNow()
        if !stream {
            var w = JSONWriter(reserving: 1024)
            echo.writeComplete(&w, model: model, createdAt: now, text: (0..<g.count).map(ModelCatalog.token).joined(),
                               input: g.promptTokens, output: g.count)
            return Self.encoderJSON(200, w.bytes)
        }
        let id = Self.responseItemID
        let text = (0..<g.count).map(ModelCatalog.token).joined()
        return .stream(headers: Self.sseHeaders(request), lines: g.count + 1, flushing: .perEvent) { i, out in
            // Line 0: created, in_progress, then (with text) the item, its part and the first delta (5 events).
            var sequence = i == 0 ? 0 : 4 + i
            // Go sorts a map's keys: `members` are those before "sequence_number", `after` those between it and "type".
            func event(_ name: String, _ members: (inout JSONWriter) -> Void,
                       after: (inout JSONWriter) -> Void = { _ in }) {
                Self.event(&out, name) { w in
                    members(&w)
                    w.key("sequence_number"); w.int(sequence)
                    after(&w)
                    w.key("type"); w.string(name)
                }
                sequence += 1
            }
            if i == 0 {
                for name in ["response.created", "response.in_progress"] {
                    event(name) { w in
                        w.key("response")
                        echo.writeStreamed(&w, model: model, createdAt: now, completedAt: nil, status: "in_progress",
                                           output: .empty, usage: nil)
                    }
                }
                if g.count > 0 {
                    event("response.output_item.added") { w in
                        w.key("item"); w.beginObject()
                        w.key("content"); w.beginArray(); w.endArray()
                        w.key("id"); w.string(id)
                        w.key("role"); w.string("assistant")
                        w.key("status"); w.string("in_progress")
                        w.key("type"); w.string("message")
                        w.endObject()
                        w.key("output_index"); w.int(0)
                    }
                    event("response.content_part.added") { w in
                        w.key("content_index"); w.int(0)
                        w.key("item_id"); w.string(id)
                        w.key("output_index"); w.int(0)
                        w.key("part"); Self.outputTextPart(&w, "")
                    }
                }
            }
            if i < g.count {
                event("response.output_text.delta") { w in
                    w.key("content_index"); w.int(0)
                    w.key("delta"); w.string(ModelCatalog.token(i))
                    w.key("item_id"); w.string(id)
                    w.key("logprobs"); w.beginArray(); w.endArray()
                    w.key("output_index"); w.int(0)
                }
                return
            }
            if g.count > 0 {
                event("response.output_text.done", { w in
                    w.key("content_index"); w.int(0)
                    w.key("item_id"); w.string(id)
                    w.key("logprobs"); w.beginArray(); w.endArray()
                    w.key("output_index"); w.int(0)
                }, after: { w in
                    w.key("text"); w.string(text)
                })
                event("response.content_part.done") { w in
                    w.key("content_index"); w.int(0)
                    w.key("item_id"); w.string(id)
                    w.key("output_index"); w.int(0)
                    w.key("part"); Self.outputTextPart(&w, text)
                }
                event("response.output_item.done") { w in
                    w.key("item"); Self.streamedMessageItem(&w, text)
                    w.key("output_index"); w.int(0)
                }
            }
            event("response.completed") { w in
                w.key("response")
                echo.writeStreamed(&w, model: model, createdAt: now, completedAt: now, status: "completed",
                                   output: g.count > 0 ? .message(text) : .none,
                                   usage: (g.promptTokens, g.count))
            }
        }
    }

    /// How many chat messages the request's `input` and `instructions` make, and the bytes of their text.
    static func responsesInput(_ body: RequestBody) -> (messages: Int, bytes: Int) {
        var messages = 0
        var bytes = 0
        if let instructions = body.string("instructions"), !instructions.isEmpty {
            messages += 1
            bytes += instructions.utf8.count
        }
        if let text = body.string("input") {
            if !text.isEmpty { messages += 1 }
            bytes += text.utf8.count
        } else if let items = body.array("input") {
            for case let item as [String: Any] in items {
                messages += 1
                if let s = item["content"] as? String {
                    bytes += s.utf8.count
                } else if let parts = item["content"] as? [Any] {
                    for case let p as [String: Any] in parts { bytes += (p["text"] as? String)?.utf8.count ?? 0 }
                } else if let s = item["output"] as? String {
                    bytes += s.utf8.count
                }
            }
        }
        return (messages, bytes)
    }

    /// `{"annotations":[],"logprobs":[],"text":…,"type":"output_text"}` (a Go map).
    static func outputTextPart(_ w: inout JSONWriter, _ text: String) {
        w.beginObject()
        w.key("annotations"); w.beginArray(); w.endArray()
        w.key("logprobs"); w.beginArray(); w.endArray()
        w.key("text"); w.string(text)
        w.key("type"); w.string("output_text")
        w.endObject()
    }

    /// The finished message item as the stream writes it (a Go map).
    static func streamedMessageItem(_ w: inout JSONWriter, _ text: String) {
        w.beginObject()
        w.key("content"); w.beginArray(); outputTextPart(&w, text); w.endArray()
        w.key("id"); w.string(responseItemID)
        w.key("role"); w.string("assistant")
        w.key("status"); w.string("completed")
        w.key("type"); w.string("message")
        w.endObject()
    }

    /// Seconds since the epoch for `created_at`: fixed for tests, the clock for benchmarks.
    func unixNow() -> Int {
        config.realTimestamps ? Int(time(nil)) : ModelCatalog.unixTime
    }
}
