/// The OpenAI-compatible `/v1/*` routes, shaped like Ollama's openai/openai.go and middleware/openai.go.
extension Router {
    /// `{"error":{"message","type","param":null,"code":null}}`. `encoder` is true when Ollama's error passes through
    /// the OpenAI writer (`json.NewEncoder`: plain `application/json`, trailing newline), false when the middleware
    /// aborts itself (Gin `c.JSON`).
    func openAIError(_ status: Int, _ message: String, encoder: Bool) -> Reply {
        let type: String
        switch status {
        case 400: type = "invalid_request_error"
        case 404: type = "not_found_error"
        default: type = "api_error"
        }
        var w = JSONWriter()
        w.beginObject()
        w.key("error"); w.beginObject()
        w.key("message"); w.string(message)
        w.key("type"); w.string(type)
        w.key("param"); w.null()
        w.key("code"); w.null()
        w.endObject()
        w.endObject()
        return encoder ? Self.encoderJSON(status, w.bytes) : .json(status, w.bytes)
    }

    /// A body written by Go's `json.NewEncoder(w).Encode`: `application/json`, newline-terminated.
    static func encoderJSON(_ status: Int, _ bytes: [UInt8]) -> Reply {
        .fixed(status: status, headers: [("Content-Type", "application/json")], body: bytes + [UInt8(ascii: "\n")])
    }

    /// Parses a `/v1/*` body and checks the model; `.failure` carries the OpenAI-shaped error reply.
    func openAIBody(_ request: Request, goType: String) -> Result<RequestBody, ReplyError> {
        switch RequestBody.parse(request.body, goType: goType) {
        case .failure(let f):
            return .failure(ReplyError(reply: openAIError(400, f.message(openAI: true), encoder: false)))
        case .success(let body):
            let model = body.string("model") ?? ""
            if model.isEmpty {
                return .failure(ReplyError(reply: openAIError(400, "model is required", encoder: true)))
            }
            if !catalog.matches(model) {
                return .failure(ReplyError(reply: openAIError(404, notFound(model), encoder: true)))
            }
            return .success(body)
        }
    }

    private func writeUsage(_ w: inout JSONWriter, prompt: Int, completion: Int) {
        w.beginObject()
        w.key("prompt_tokens"); w.int(prompt)
        w.key("completion_tokens"); w.int(completion)
        w.key("total_tokens"); w.int(prompt + completion)
        w.endObject()
    }

    static func sse(_ lines: Int, _ make: @escaping (Int, inout [UInt8]) -> Void) -> Reply {
        .stream(headers: [("Content-Type", "text/event-stream")], lines: lines, makeLine: make)
    }

    private static func appendEvent(_ out: inout [UInt8], _ json: [UInt8]) {
        out.append(contentsOf: Array("data: ".utf8))
        out.append(contentsOf: json)
        out.append(contentsOf: [10, 10])
    }

    private static let doneEvent = Array("data: [DONE]\n\n".utf8)

    func openAIChat(_ request: Request) -> Reply {
        let body: RequestBody
        switch openAIBody(request, goType: "openai.ChatCompletionRequest") {
        case .failure(let e): return e.reply
        case .success(let b): body = b
        }
        let g = generation(body, streamDefault: false,
                           promptBytes: RequestBody.messagesLength(body.array("messages") ?? []),
                           requestedCount: body.int("max_tokens"))  // Ollama reads no max_completion_tokens
        let includeUsage = body.nested("stream_options")?.bool("include_usage") ?? false
        let model = g.model
        let id = "chatcmpl-1"
        let header: (inout JSONWriter, String) -> Void = { w, object in
            w.key("id"); w.string(id)
            w.key("object"); w.string(object)
            w.key("created"); w.int(ModelCatalog.unixTime)
            w.key("model"); w.string(model)
            w.key("system_fingerprint"); w.string("fp_ollama")
        }
        if !g.stream {
            var w = JSONWriter(reserving: 512)
            w.beginObject()
            header(&w, "chat.completion")
            w.key("choices"); w.beginArray(); w.beginObject()
            w.key("index"); w.int(0)
            w.key("message"); w.beginObject()
            w.key("role"); w.string("assistant")
            w.key("content"); w.string((0..<g.count).map(ModelCatalog.token).joined())
            w.endObject()
            w.key("finish_reason"); w.string(g.doneReason)
            w.endObject(); w.endArray()
            w.key("usage"); writeUsage(&w, prompt: g.promptTokens, completion: g.count)
            w.endObject()
            return Self.encoderJSON(200, w.bytes)
        }
        // One flush per Ollama line: a chunk per token, then finish chunk (+ usage chunk) + [DONE] together.
        return Self.sse(g.count + 1) { [self] i, out in
            var w = JSONWriter()
            w.beginObject()
            header(&w, "chat.completion.chunk")
            w.key("choices"); w.beginArray(); w.beginObject()
            w.key("index"); w.int(0)
            w.key("delta"); w.beginObject()
            if i < g.count {
                if i == 0 { w.key("role"); w.string("assistant") }
                w.key("content"); w.string(ModelCatalog.token(i))
                w.endObject()
                w.key("finish_reason"); w.null()
            } else {
                w.endObject()
                w.key("finish_reason"); w.string(g.doneReason)
            }
            w.endObject(); w.endArray()
            w.endObject()
            Self.appendEvent(&out, w.bytes)
            guard i == g.count else { return }
            if includeUsage {
                var u = JSONWriter()
                u.beginObject()
                header(&u, "chat.completion.chunk")
                u.key("choices"); u.beginArray(); u.endArray()
                u.key("usage"); writeUsage(&u, prompt: g.promptTokens, completion: g.count)
                u.endObject()
                Self.appendEvent(&out, u.bytes)
            }
            out.append(contentsOf: Self.doneEvent)
        }
    }

    func openAICompletion(_ request: Request) -> Reply {
        let body: RequestBody
        switch openAIBody(request, goType: "openai.CompletionRequest") {
        case .failure(let e): return e.reply
        case .success(let b): body = b
        }
        let g = generation(body, streamDefault: false, promptBytes: (body.string("prompt") ?? "").utf8.count,
                           requestedCount: body.int("max_tokens"))
        let includeUsage = body.nested("stream_options")?.bool("include_usage") ?? false
        let model = g.model
        let id = "cmpl-1"
        let choice: (inout JSONWriter, String, String?) -> Void = { w, text, reason in
            w.key("choices"); w.beginArray(); w.beginObject()
            w.key("text"); w.string(text)
            w.key("index"); w.int(0)
            w.key("finish_reason")
            if let reason { w.string(reason) } else { w.null() }
            w.endObject(); w.endArray()
        }
        if !g.stream {
            var w = JSONWriter(reserving: 512)
            w.beginObject()
            w.key("id"); w.string(id)
            w.key("object"); w.string("text_completion")
            w.key("created"); w.int(ModelCatalog.unixTime)
            w.key("model"); w.string(model)
            w.key("system_fingerprint"); w.string("fp_ollama")
            choice(&w, (0..<g.count).map(ModelCatalog.token).joined(), g.doneReason)
            w.key("usage"); writeUsage(&w, prompt: g.promptTokens, completion: g.count)
            w.endObject()
            return Self.encoderJSON(200, w.bytes)
        }
        // CompletionChunk puts choices before model; with include_usage every chunk carries zero usage.
        let chunk: (inout JSONWriter, Bool, (inout JSONWriter) -> Void) -> Void = { [self] w, realUsage, choices in
            w.beginObject()
            w.key("id"); w.string(id)
            w.key("object"); w.string("text_completion")
            w.key("created"); w.int(ModelCatalog.unixTime)
            choices(&w)
            w.key("model"); w.string(model)
            w.key("system_fingerprint"); w.string("fp_ollama")
            if includeUsage {
                w.key("usage")
                writeUsage(&w, prompt: realUsage ? g.promptTokens : 0, completion: realUsage ? g.count : 0)
            }
            w.endObject()
        }
        return Self.sse(g.count + 1) { i, out in
            var w = JSONWriter()
            let last = i == g.count
            chunk(&w, false) { choice(&$0, last ? "" : ModelCatalog.token(i), last ? g.doneReason : nil) }
            Self.appendEvent(&out, w.bytes)
            guard last else { return }
            if includeUsage {
                var u = JSONWriter()
                chunk(&u, true) { $0.key("choices"); $0.beginArray(); $0.endArray() }
                Self.appendEvent(&out, u.bytes)
            }
            out.append(contentsOf: Self.doneEvent)
        }
    }

    func openAIEmbeddings(_ request: Request) -> Reply {
        let body: RequestBody
        switch openAIBody(request, goType: "openai.EmbedRequest") {
        case .failure(let e): return e.reply
        case .success(let b): body = b
        }
        let inputs: [String] = body.string("input").map { [$0] }
            ?? (body.array("input") ?? []).compactMap { $0 as? String }
        if inputs.isEmpty { return openAIError(400, "invalid input", encoder: false) }
        let tokens = inputs.reduce(0) { $0 + ModelCatalog.promptTokens(bytes: $1.utf8.count) }
        var w = JSONWriter(reserving: 512)
        w.beginObject()
        w.key("object"); w.string("list")
        w.key("data"); w.beginArray()
        for (k, input) in inputs.enumerated() {
            w.beginObject()
            w.key("object"); w.string("embedding")
            w.key("embedding"); w.beginArray()
            for v in ModelCatalog.embedding(index: k, length: input.utf8.count) { w.float(v) }
            w.endArray()
            w.key("index"); w.int(k)
            w.endObject()
        }
        w.endArray()
        w.key("model"); w.string(body.string("model") ?? "")
        w.key("usage"); w.beginObject()
        w.key("prompt_tokens"); w.int(tokens)
        w.key("total_tokens"); w.int(tokens)
        w.endObject()
        w.endObject()
        return Self.encoderJSON(200, w.bytes)
    }

    private func writeModel(_ w: inout JSONWriter, id: String) {
        w.beginObject()
        w.key("id"); w.string(id)
        w.key("object"); w.string("model")
        w.key("created"); w.int(ModelCatalog.unixTime)
        w.key("owned_by"); w.string("library")
        w.endObject()
    }

    func openAIModels() -> Reply {
        var w = JSONWriter()
        w.beginObject()
        w.key("object"); w.string("list")
        w.key("data"); w.beginArray()
        for name in catalog.listedNames { writeModel(&w, id: name) }
        w.endArray()
        w.endObject()
        return Self.encoderJSON(200, w.bytes)
    }

    func openAIModel(_ id: String) -> Reply {
        let decoded = id.removingPercentEncodingIfPossible
        guard catalog.matches(decoded) else { return openAIError(404, notFound(decoded), encoder: true) }
        var w = JSONWriter()
        writeModel(&w, id: decoded)
        return Self.encoderJSON(200, w.bytes)
    }
}

extension String {
    /// Percent-decoded (Gin matches on the decoded path), or unchanged when the escapes are malformed.
    var removingPercentEncodingIfPossible: String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var it = Array(utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
