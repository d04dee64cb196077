/// The native `/api/*` routes. Field order follows the structs in Ollama's api/types.go.
extension Router {
    /// What a generate/chat request asks for.
    struct Generation {
        var model: String
        var stream: Bool
        /// Tokens to produce.
        var count: Int
        /// Whether `count` came from the request (`num_predict`/`max_tokens`): the generation then ends with
        /// done_reason "length", as a real model cut off by the limit does; otherwise "stop".
        var limited: Bool
        var promptTokens: Int

        var doneReason: String { limited ? "length" : "stop" }
    }

    func notFound(_ model: String) -> String { "model \"\(model)\" not found, try pulling it first" }

    /// Reads model, stream flag and token count from a body already checked by `ollamaBody`/`openAIBody`.
    func generation(_ body: RequestBody, streamDefault: Bool, promptBytes: Int,
                    requestedCount: Int?) -> Generation {
        var count = config.tokens
        var limited = false
        // Ollama: num_predict (max_tokens) 0 or negative is unlimited (-1 infinite, -2 fill the context).
        if let n = requestedCount, n > 0 {
            count = n
            limited = true
        }
        let promptTokens = ModelCatalog.promptTokens(bytes: promptBytes)
        // The context holds prompt and generation: a generation stops when `options.num_ctx` is full.
        if let ctx = body.nested("options")?.int("num_ctx"), ctx > 0, promptTokens + count > ctx {
            count = max(0, ctx - promptTokens)
            limited = true
        }
        return Generation(model: body.string("model") ?? "", stream: body.bool("stream") ?? streamDefault,
                          count: count, limited: limited, promptTokens: promptTokens)
    }

    /// Parses an `/api/*` body and checks the model; `.failure` carries the error reply.
    func ollamaBody(_ request: Request, goType: String, checkModel: Bool = true) -> Result<RequestBody, ReplyError> {
        switch RequestBody.parse(request.body, goType: goType) {
        case .failure(let f):
            return .failure(ReplyError(reply: .ollamaError(400, f.message(openAI: false))))
        case .success(let body):
            guard checkModel else { return .success(body) }
            let model = body.string("model") ?? body.string("name") ?? ""
            if model.isEmpty { return .failure(ReplyError(reply: .ollamaError(400, "model is required"))) }
            if !catalog.matches(model) { return .failure(ReplyError(reply: .ollamaError(404, notFound(model)))) }
            return .success(body)
        }
    }

    /// Ollama's `Metrics`, zero fields omitted like Go's `omitempty`.
    func writeMetrics(_ w: inout JSONWriter, promptTokens: Int, evalCount: Int) {
        let load = 1_000_000
        let promptDuration = promptTokens * 100_000
        let evalDuration = evalCount * max(1, config.intervalMs) * 1_000_000
        w.key("total_duration"); w.int(load + promptDuration + evalDuration + 500_000)
        w.key("load_duration"); w.int(load)
        if promptTokens > 0 {
            w.key("prompt_eval_count"); w.int(promptTokens)
            w.key("prompt_eval_duration"); w.int(promptDuration)
        }
        if evalCount > 0 {
            w.key("eval_count"); w.int(evalCount)
            w.key("eval_duration"); w.int(evalDuration)
        }
    }

    /// The `created_at` value: fixed for tests, or the real time for benchmarks.
    func stamp() -> String {
        config.realTimestamps ? ModelCatalog.now() : ModelCatalog.timestamp
    }

    static func ndjson(_ lines: Int, _ make: @escaping (Int, inout JSONWriter) -> Void) -> Reply {
        .stream(headers: [("Content-Type", "application/x-ndjson")], lines: lines) { i, out in
            var w = JSONWriter()
            make(i, &w)
            out.append(contentsOf: w.bytes)
            out.append(UInt8(ascii: "\n"))
        }
    }

    func version() -> Reply {
        var w = JSONWriter()
        w.beginObject(); w.key("version"); w.string(ModelCatalog.version); w.endObject()
        return .json(200, w.bytes)
    }

    func tags() -> Reply {
        var w = JSONWriter(reserving: 512)
        w.beginObject()
        w.key("models"); w.beginArray()
        for name in catalog.listedNames {
            w.beginObject()
            w.key("name"); w.string(name)
            w.key("model"); w.string(name)
            w.key("modified_at"); w.string(ModelCatalog.timestamp)
            w.key("size"); w.int(ModelCatalog.size)
            w.key("digest"); w.string(ModelCatalog.digest)
            w.key("details"); ModelCatalog.writeDetails(&w)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return .json(200, w.bytes)
    }

    func ps() -> Reply {
        var w = JSONWriter(reserving: 512)
        w.beginObject()
        w.key("models"); w.beginArray()
        for name in catalog.loadedNames {
            w.beginObject()
            w.key("name"); w.string(name)
            w.key("model"); w.string(name)
            w.key("size"); w.int(ModelCatalog.sizeLoaded)
            w.key("digest"); w.string(ModelCatalog.digest)
            w.key("details"); ModelCatalog.writeDetails(&w)
            w.key("expires_at"); w.string(ModelCatalog.expiresAt)
            w.key("size_vram"); w.int(ModelCatalog.sizeLoaded)
            w.key("context_length"); w.int(4096)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return .json(200, w.bytes)
    }

    func show(_ request: Request) -> Reply {
        if let error = ollamaBody(request, goType: "api.ShowRequest").errorReply { return error }
        var w = JSONWriter(reserving: 1024)
        w.beginObject()
        w.key("license"); w.string("Apache License\nVersion 2.0, January 2004")
        w.key("modelfile"); w.string("# Modelfile generated by \"ollama show\"\nFROM \(catalog.listedName)\n"
            + "TEMPLATE \"\"\"[INST] {{ .Prompt }} [/INST]\"\"\"\nPARAMETER stop [INST]\nPARAMETER stop [/INST]\n")
        w.key("parameters"); w.string("stop                           \"[INST]\"\nstop                           \"[/INST]\"")
        w.key("template"); w.string("[INST] {{ .Prompt }} [/INST]")
        w.key("details"); ModelCatalog.writeDetails(&w)
        w.key("model_info"); w.beginObject()  // Go sorts map keys
        w.key("general.architecture"); w.string("llama")
        w.key("general.file_type"); w.int(2)
        w.key("general.parameter_count"); w.int(7_248_023_552)
        w.key("general.quantization_version"); w.int(2)
        w.key("llama.context_length"); w.int(32768)
        w.key("llama.embedding_length"); w.int(4096)
        w.endObject()
        w.key("capabilities"); w.beginArray(); w.string("completion"); w.endArray()
        w.key("modified_at"); w.string(ModelCatalog.timestamp)
        w.endObject()
        return .json(200, w.bytes)
    }

    func generate(_ request: Request) -> Reply {
        let body: RequestBody
        switch ollamaBody(request, goType: "api.GenerateRequest") {
        case .failure(let e): return e.reply
        case .success(let b): body = b
        }
        let prompt = body.string("prompt") ?? ""
        let g = generation(body, streamDefault: true, promptBytes: prompt.utf8.count,
                           requestedCount: body.nested("options")?.int("num_predict"))
        let model = g.model
        if prompt.isEmpty && (body.array("images")?.isEmpty ?? true) {
            // Ollama answers an empty prompt by loading the model: one JSON object, done_reason "load".
            var w = JSONWriter()
            w.beginObject()
            w.key("model"); w.string(model)
            w.key("created_at"); w.string(stamp())
            w.key("response"); w.string("")
            w.key("done"); w.bool(true)
            w.key("done_reason"); w.string("load")
            w.endObject()
            return .json(200, w.bytes)
        }
        let final: (inout JSONWriter, String) -> Void = { w, text in
            w.beginObject()
            w.key("model"); w.string(model)
            w.key("created_at"); w.string(stamp())
            w.key("response"); w.string(text)
            w.key("done"); w.bool(true)
            w.key("done_reason"); w.string(g.doneReason)
            let contextCount = g.promptTokens + g.count
            w.key("context"); w.beginArray()
            for k in 0..<contextCount { w.int((k * 7919) % 32000 + 1) }
            w.endArray()
            writeMetrics(&w, promptTokens: g.promptTokens, evalCount: g.count)
            w.endObject()
        }
        if !g.stream {
            var w = JSONWriter()
            final(&w, (0..<g.count).map(ModelCatalog.token).joined())
            return .json(200, w.bytes)
        }
        return Self.ndjson(g.count + 1) { i, w in
            if i == g.count { final(&w, ""); return }
            w.beginObject()
            w.key("model"); w.string(model)
            w.key("created_at"); w.string(stamp())
            w.key("response"); w.string(ModelCatalog.token(i))
            w.key("done"); w.bool(false)
            w.endObject()
        }
    }

    func chat(_ request: Request) -> Reply {
        let body: RequestBody
        switch ollamaBody(request, goType: "api.ChatRequest") {
        case .failure(let e): return e.reply
        case .success(let b): body = b
        }
        let messages = body.array("messages") ?? []
        let g = generation(body, streamDefault: true, promptBytes: RequestBody.messagesLength(messages),
                           requestedCount: body.nested("options")?.int("num_predict"))
        let model = g.model
        let write: (inout JSONWriter, String, Bool, String?) -> Void = { w, content, done, reason in
            w.beginObject()
            w.key("model"); w.string(model)
            w.key("created_at"); w.string(stamp())
            w.key("message"); w.beginObject()
            w.key("role"); w.string("assistant")
            w.key("content"); w.string(content)
            w.endObject()
            w.key("done"); w.bool(done)
            if let reason {
                w.key("done_reason"); w.string(reason)
                if reason != "load" { writeMetrics(&w, promptTokens: g.promptTokens, evalCount: g.count) }
            }
            w.endObject()
        }
        if messages.isEmpty {
            var w = JSONWriter()
            write(&w, "", true, "load")
            return .json(200, w.bytes)
        }
        if !g.stream {
            var w = JSONWriter()
            write(&w, (0..<g.count).map(ModelCatalog.token).joined(), true, g.doneReason)
            return .json(200, w.bytes)
        }
        return Self.ndjson(g.count + 1) { i, w in
            if i == g.count {
                write(&w, "", true, g.doneReason)
            } else {
                write(&w, ModelCatalog.token(i), false, nil)
            }
        }
    }

    /// The inputs of an embed request (`input` is a string or an array of strings).
    private func embedInputs(_ body: RequestBody) -> [String] {
        if let s = body.string("input") { return [s] }
        return (body.array("input") ?? []).compactMap { $0 as? String }
    }

    func embed(_ request: Request) -> Reply {
        let body: RequestBody
        switch ollamaBody(request, goType: "api.EmbedRequest") {
        case .failure(let e): return e.reply
        case .success(let b): body = b
        }
        let inputs = embedInputs(body)
        let tokens = inputs.reduce(0) { $0 + ModelCatalog.promptTokens(bytes: $1.utf8.count) }
        var w = JSONWriter(reserving: 512)
        w.beginObject()
        w.key("model"); w.string(body.string("model") ?? "")
        w.key("embeddings"); w.beginArray()
        for (k, input) in inputs.enumerated() {
            w.beginArray()
            for v in ModelCatalog.embedding(index: k, length: input.utf8.count) { w.float(v) }
            w.endArray()
        }
        w.endArray()
        w.key("total_duration"); w.int(1_500_000 + tokens * 100_000)
        w.key("load_duration"); w.int(1_000_000)
        if tokens > 0 { w.key("prompt_eval_count"); w.int(tokens) }
        w.endObject()
        return .json(200, w.bytes)
    }

    func embeddings(_ request: Request) -> Reply {
        let body: RequestBody
        switch ollamaBody(request, goType: "api.EmbeddingRequest") {
        case .failure(let e): return e.reply
        case .success(let b): body = b
        }
        let prompt = body.string("prompt") ?? ""
        var w = JSONWriter(reserving: 256)
        w.beginObject()
        w.key("embedding"); w.beginArray()
        if !prompt.isEmpty {
            for v in ModelCatalog.embedding(index: 0, length: prompt.utf8.count) { w.float(v) }
        }
        w.endArray()
        w.endObject()
        return .json(200, w.bytes)
    }

    func pull(_ request: Request) -> Reply {
        let body: RequestBody
        switch ollamaBody(request, goType: "api.PullRequest", checkModel: false) {
        case .failure(let e): return e.reply
        case .success(let b): body = b
        }
        if (body.string("model") ?? body.string("name") ?? "").isEmpty {
            return .ollamaError(400, "model is required")
        }
        let total = ModelCatalog.size
        let short = String(ModelCatalog.digest.prefix(12))
        let progress = [0, total / 4, total / 2, total * 3 / 4, total]
        let steps: [(status: String, completed: Int?)] = [("pulling manifest", nil)]
            + progress.map { ("pulling \(short)", $0) }
            + [("verifying sha256 digest", nil), ("writing manifest", nil), ("success", nil)]
        if body.bool("stream") == false { return statusReply("success") }
        return Self.ndjson(steps.count) { i, w in
            w.beginObject()
            w.key("status"); w.string(steps[i].status)
            if let completed = steps[i].completed {
                w.key("digest"); w.string("sha256:" + ModelCatalog.digest)
                w.key("total"); w.int(total)
                if completed > 0 { w.key("completed"); w.int(completed) }
            }
            w.endObject()
        }
    }

    private func statusReply(_ status: String) -> Reply {
        var w = JSONWriter()
        w.beginObject(); w.key("status"); w.string(status); w.endObject()
        return .json(200, w.bytes)
    }

    /// `/api/push` and `/api/create`: accepted, reported as a short progress stream ending in "success".
    func adminProgress(_ request: Request) -> Reply {
        let body: RequestBody
        switch ollamaBody(request, goType: "api.CreateRequest", checkModel: false) {
        case .failure(let e): return e.reply
        case .success(let b): body = b
        }
        if body.bool("stream") == false { return statusReply("success") }
        let steps = ["retrieving manifest", "writing manifest", "success"]
        return Self.ndjson(steps.count) { i, w in
            w.beginObject(); w.key("status"); w.string(steps[i]); w.endObject()
        }
    }

    /// `/api/copy`: 200 with an empty body when the source exists.
    func copyModel(_ request: Request) -> Reply {
        switch RequestBody.parse(request.body, goType: "api.CopyRequest") {
        case .failure(let f): return .ollamaError(400, f.message(openAI: false))
        case .success(let body):
            let source = body.string("source") ?? ""
            if !catalog.matches(source) { return .ollamaError(404, "model \"\(source)\" not found") }
            return .fixed(status: 200, headers: [], body: [])
        }
    }

    /// `/api/delete`: 200 with an empty body when the model exists (the fake keeps it anyway).
    func deleteModel(_ request: Request) -> Reply {
        switch RequestBody.parse(request.body, goType: "api.DeleteRequest") {
        case .failure(let f): return .ollamaError(400, f.message(openAI: false))
        case .success(let body):
            let model = body.string("model") ?? body.string("name") ?? ""
            if !catalog.matches(model) { return .ollamaError(404, "model '\(model)' not found") }
            return .fixed(status: 200, headers: [], body: [])
        }
    }
}

/// An error reply carried through `Result` (only ever used on the connection's own thread).
struct ReplyError: Error, @unchecked Sendable {
    var reply: Reply
}

extension Result where Failure == ReplyError {
    /// The error reply, if this is a failure.
    var errorReply: Reply? {
        if case .failure(let e) = self { return e.reply }
        return nil
    }
}
