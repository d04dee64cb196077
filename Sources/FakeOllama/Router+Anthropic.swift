/// `POST /v1/messages`, the Anthropic Messages API as Ollama serves it (middleware/anthropic.go turning the request
/// into a chat, anthropic/anthropic.go turning the chat back): a `message` object, or with `"stream": true` the
/// named server-sent events `message_start`, `content_block_start`, `content_block_delta`…, `content_block_stop`,
/// `message_delta`, `message_stop`, each flushed on its own. Errors are `{"type":"error","error":{…},"request_id"}`.
extension Router {
    /// Ollama's message ids are `msg_` and 24 random hex digits; the fake's are fixed.
    static let anthropicMessageID = "msg_000000000000000000000001"
    /// Likewise the `request_id` of an error.
    static let anthropicRequestID = "req_000000000000000000000001"

    /// `anthropic.NewError`: the error type follows the status. `encoder` as for `openAIError`: true when the error
    /// passed through Ollama's writer (`application/json`, trailing newline), false when the middleware refused the
    /// request itself (Gin's `c.JSON`).
    func anthropicError(_ status: Int, _ message: String, encoder: Bool) -> Reply {
        let type: String
        switch status {
        case 400: type = "invalid_request_error"
        case 401: type = "authentication_error"
        case 403: type = "permission_error"
        case 404: type = "not_found_error"
        case 429: type = "rate_limit_error"
        case 503, 529: type = "overloaded_error"
        default: type = "api_error"
        }
        var w = JSONWriter()
        w.beginObject()
        w.key("type"); w.string("error")
        w.key("error"); w.beginObject()
        w.key("type"); w.string(type)
        w.key("message"); w.string(message)
        w.endObject()
        w.key("request_id"); w.string(Self.anthropicRequestID)
        w.endObject()
        return encoder ? Self.encoderJSON(status, w.bytes) : .json(status, w.bytes)
    }

    func anthropicMessages(_ request: Request) -> Reply {
        let body: RequestBody
        switch RequestBody.parse(request.body, goType: "anthropic.MessagesRequest") {
        case .failure(let f): return anthropicError(400, f.message(openAI: true), encoder: false)
        case .success(let b): body = b
        }
        let model = body.string("model") ?? ""
        if model.isEmpty { return anthropicError(400, "model is required", encoder: false) }
        let maxTokens = body.int("max_tokens") ?? 0
        if maxTokens <= 0 { return anthropicError(400, "max_tokens is required and must be positive", encoder: false) }
        let messages = body.array("messages") ?? []
        if messages.isEmpty { return anthropicError(400, "messages is required", encoder: false) }
        let stream = body.bool("stream") ?? false
        // From here on the middleware has set its streaming headers; the chat handler's errors keep them.
        let streamHeaders = stream ? Self.sseHeaders(request) : []
        if !catalog.matches(model) {
            return Self.adding(streamHeaders.filter { $0.0 != "Content-Type" },
                               to: anthropicError(404, notFound(model), encoder: true))
        }
        let system = Self.anthropicSystemText(body.object["system"])
        let g = cappedGeneration(model: model, stream: stream, limit: maxTokens,
                                 promptBytes: system.utf8.count + RequestBody.messagesLength(messages))
        let stopReason = g.limited ? "max_tokens" : "end_turn"
        if !stream {
            var w = JSONWriter(reserving: 512)
            w.beginObject()
            w.key("id"); w.string(Self.anthropicMessageID)
            w.key("type"); w.string("message")
            w.key("role"); w.string("assistant")
            w.key("model"); w.string(model)
            w.key("content")
            // Go's nil slice: no text, no content array.
            if g.count == 0 {
                w.null()
            } else {
                w.beginArray(); w.beginObject()
                w.key("type"); w.string("text")
                w.key("text"); w.string((0..<g.count).map(ModelCatalog.token).joined())
                w.endObject(); w.endArray()
            }
            w.key("stop_reason"); w.string(stopReason)
            w.key("usage"); Self.anthropicUsage(&w, input: g.promptTokens, output: g.count)
            w.endObject()
            return Self.encoderJSON(200, w.bytes)
        }
        // The first chat line carries no counts yet, so message_start reports Ollama's estimate of the input.
        let estimate = g.count == 0 ? g.promptTokens : Self.anthropicEstimate(body, system: system)
        return .stream(headers: streamHeaders, lines: g.count + 1, flushing: .perEvent) { i, out in
            if i == 0 {
                Self.event(&out, "message_start") { w in
                    w.key("type"); w.string("message_start")
                    w.key("message"); w.beginObject()
                    w.key("id"); w.string(Self.anthropicMessageID)
                    w.key("type"); w.string("message")
                    w.key("role"); w.string("assistant")
                    w.key("model"); w.string(model)
                    w.key("content"); w.beginArray(); w.endArray()
                    w.key("usage"); Self.anthropicUsage(&w, input: estimate, output: 0)
                    w.endObject()
                }
                if g.count > 0 {
                    Self.event(&out, "content_block_start") { w in
                        w.key("type"); w.string("content_block_start")
                        w.key("index"); w.int(0)
                        w.key("content_block"); w.beginObject()
                        w.key("type"); w.string("text")
                        w.key("text"); w.string("")
                        w.endObject()
                    }
                }
            }
            if i < g.count {
                Self.event(&out, "content_block_delta") { w in
                    w.key("type"); w.string("content_block_delta")
                    w.key("index"); w.int(0)
                    w.key("delta"); w.beginObject()
                    w.key("type"); w.string("text_delta")
                    w.key("text"); w.string(ModelCatalog.token(i))
                    w.endObject()
                }
                return
            }
            if g.count > 0 {
                Self.event(&out, "content_block_stop") { w in
                    w.key("type"); w.string("content_block_stop")
                    w.key("index"); w.int(0)
                }
            }
            Self.event(&out, "message_delta") { w in
                w.key("type"); w.string("message_delta")
                w.key("delta"); w.beginObject()
                w.key("stop_reason"); w.string(stopReason)
                w.endObject()
                w.key("usage"); Self.anthropicUsage(&w, input: g.promptTokens, output: g.count)
            }
            Self.event(&out, "message_stop") { w in
                w.key("type"); w.string("message_stop")
            }
        }
    }

    private static func anthropicUsage(_ w: inout JSONWriter, input: Int, output: Int) {
        w.beginObject()
        w.key("input_tokens"); w.int(input)
        w.key("output_tokens"); w.int(output)
        w.endObject()
    }

    /// The system prompt as the chat request gets it: a string, or the text of its text blocks.
    static func anthropicSystemText(_ system: Any?) -> String {
        if let s = system as? String { return s }
        guard let blocks = system as? [Any] else { return "" }
        var text = ""
        for case let block as [String: Any] in blocks where block["type"] as? String == "text" {
            text += block["text"] as? String ?? ""
        }
        return text
    }

    /// `anthropic.EstimateInputTokens`: a quarter of the bytes of the system prompt, each role, and each block's
    /// text and thinking; at least 1.
    static func anthropicEstimate(_ body: RequestBody, system: String) -> Int {
        var total = system.utf8.count
        for case let message as [String: Any] in body.array("messages") ?? [] {
            total += (message["role"] as? String ?? "").utf8.count
            if let s = message["content"] as? String {
                total += s.utf8.count
            } else if let blocks = message["content"] as? [Any] {
                for case let block as [String: Any] in blocks {
                    total += (block["text"] as? String)?.utf8.count ?? 0
                    total += (block["thinking"] as? String)?.utf8.count ?? 0
                }
            }
        }
        return max(1, total / 4)
    }

    /// One `event: NAME\ndata: {…}\n\n` (Ollama's `writeSSE`), the object's members written by `members`.
    static func event(_ out: inout [UInt8], _ name: String, _ members: (inout JSONWriter) -> Void) {
        var w = JSONWriter()
        w.beginObject()
        members(&w)
        w.endObject()
        out.append(contentsOf: Array("event: \(name)\ndata: ".utf8))
        out.append(contentsOf: w.bytes)
        out.append(contentsOf: [10, 10])
    }

    /// The headers Ollama's Anthropic and Responses middlewares set before a streamed answer.
    static func sseHeaders(_ request: Request) -> [(String, String)] {
        var headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
        // Go's server drops the handler's "Connection: keep-alive" when it is about to close instead.
        if request.keepAlive && request.minorVersion == 1 { headers.append(("Connection", "keep-alive")) }
        return headers
    }

    /// `reply` with `headers` added (a fixed reply only).
    static func adding(_ headers: [(String, String)], to reply: Reply) -> Reply {
        guard case .fixed(let status, let own, let body) = reply, !headers.isEmpty else { return reply }
        return .fixed(status: status, headers: own + headers, body: body)
    }

    /// A generation for the Messages and Responses APIs, whose token limit (`max_tokens`, `max_output_tokens`) is
    /// a ceiling: the fake model says its `tokens` and stops ("end_turn"/"stop"), unless the limit cuts it short.
    func cappedGeneration(model: String, stream: Bool, limit: Int?, promptBytes: Int) -> Generation {
        let count = min(config.tokens, max(0, limit ?? config.tokens))
        return Generation(model: model, stream: stream, count: count, limited: count < config.tokens,
                          promptTokens: ModelCatalog.promptTokens(bytes: promptBytes))
    }
}
