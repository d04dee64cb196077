extension BodyRewrite {
    /// What a body asks that reaches past its own generation, and that the sender's policy may not allow.
    public enum Override: Equatable, Sendable {
        /// A field that changes how the shared model is loaded or prompted for every user: a runner option in
        /// `options` (`"options.num_gpu"`), top-level `shift`, or a user-supplied `template` (Go `text/template`,
        /// which Ollama parses and executes, and which can expand exponentially).
        case modelOverride(field: String)
        /// A tool (its `type` as sent) that makes Ollama search the web through ollama.com with the server's key.
        case webSearch(type: String)
    }

    /// The `options` keys a request may always set: what Ollama reads at prediction time (sampling, stop words,
    /// `num_predict`), plus older Ollama versions' sampling options (`tfs_z`, `mirostat*`, `penalize_newline`),
    /// which the current one ignores. Everything else in the map is, or may become, a runner option: Ollama's
    /// `Runner` struct (`num_ctx`, `num_batch`, `num_gpu`, `main_gpu`, `use_mmap`, `num_thread`,
    /// `draft_num_predict`) and older ones' (`use_mlock`, `low_vram`, `f16_kv`, `vocab_only`, `numa`, `num_gqa`,
    /// `rope_*`, `logits_all`, ...), each of which reloads the model, moves it to another device or off the GPU.
    /// `num_ctx` is allowed too, though a different one reloads the model: many clients send it on every request
    /// (Continue, chat UIs' context setting), so rather than refused it is pinned when the body is rewritten: to
    /// `max-context`, or to the server's default (`GenerationLimits.pinned`).
    static let samplingOptions: Set<[UInt8]> = Set([
        "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n", "temperature",
        "repeat_penalty", "presence_penalty", "frequency_penalty", "stop", "tfs_z", "mirostat", "mirostat_tau",
        "mirostat_eta", "penalize_newline",
    ].map { Array($0.utf8) })

    /// The first field of `body` on `route` that needs a permission the sender lacks, or nil.
    ///
    /// `overrides`: the sender may set runner options, `shift` and `template`; `webSearch`: the sender may use Ollama's
    /// web-search tools. Read as Go reads the body: the struct fields (`options`, `shift`,
    /// `template`, `tools`, a tool's `type`) case-insensitively with Go's folds, so a key Go could match without
    /// it being spelled exactly, or one given twice, is refused (`Refusal`) rather than guessed at; the options
    /// map's keys exactly (a key given twice counts if any of its values is not null). A struct field sent as null (or
    /// an empty `template`) is what Ollama does without it: allowed. An options key sent as null is allowed here too,
    /// but Ollama tells it from an absent one for some runner options, so the rewrite removes it
    /// (`GenerationLimits.pinned`).
    public static func override(in body: [UInt8], route: InferenceRoute, overrides: Bool,
                                webSearch: Bool) -> Result<Override?, Refusal> {
        let needsOverrides = !overrides && route.hasOptions
        let needsTools = !webSearch && (route == .messages || route == .responses)
        guard needsOverrides || needsTools, !body.isEmpty else { return .success(nil) }
        var walker = Walker(body)
        do {
            let top = try walker.members(at: walker.firstNonSpace())
            if needsOverrides {
                if let found = try modelOverride(top, route: route, walker: &walker) {
                    return .success(found)
                }
            }
            if needsTools, let tools = try structField(top, "tools"), walker.kind(at: tools.value.lowerBound) == .array {
                if let type = try webSearchTool(in: tools.value.lowerBound, depth: 0, walker: &walker) {
                    return .success(.webSearch(type: type))
                }
            }
        } catch let refusal as Refusal {
            return .failure(refusal)
        } catch {
            return .failure(Refusal(message: "the body is not valid JSON"))
        }
        return .success(nil)
    }

    /// A runner option, `shift` or `template` in a native body, or nil.
    private static func modelOverride(_ top: [Member], route: InferenceRoute,
                                      walker: inout Walker) throws -> Override? {
        if let options = try structField(top, "options"), walker.kind(at: options.value.lowerBound) == .object {
            // Anything else Go fails to decode into the map: Ollama answers 400 without loading anything.
            let numCtx = Array("num_ctx".utf8)
            for m in try walker.members(at: options.value.lowerBound) where !walker.isNull(m.value) {
                if let key = m.key, samplingOptions.contains(key) || key == numCtx { continue }
                let name = m.key.map { String(decoding: $0, as: UTF8.self) } ?? walker.text(m.keyStart..<m.value.lowerBound)
                return .modelOverride(field: "options.\(name)")
            }
        }
        // Under a second (0 is `ollama stop`'s unload) unloads the model from under every other user. Longer ones
        // are pinned to the policy's value when the body is rewritten (`GenerationLimits.pinned`).
        if let keep = try structField(top, "keep_alive"), !walker.isNull(keep.value),
           let seconds = try? keepAliveSeconds(keep, walker: &walker), seconds < 1 {
            return .modelOverride(field: "keep_alive")
        }
        if route == .generate || route == .chat, let shift = try structField(top, "shift"), !walker.isNull(shift.value) {
            return .modelOverride(field: "shift")
        }
        if route == .generate, let template = try structField(top, "template"), !walker.isNull(template.value),
           !walker.bytes[template.value].elementsEqual("\"\"".utf8) {
            return .modelOverride(field: "template")
        }
        return nil
    }

    /// The `type` of the first tool in the array at `start` (or in a tool's own `tools`, as a Responses
    /// `namespace` holds them) that Ollama runs as its web search: a type starting `web_search` (Ollama's
    /// Anthropic layer and cloud proxy test the prefix, the Responses layer the whole word; read generously here,
    /// blanks trimmed and any case).
    private static func webSearchTool(in start: Int, depth: Int, walker: inout Walker) throws -> String? {
        let elements = try walker.elements(at: start)
        for element in elements where walker.kind(at: element.lowerBound) == .object {
            let members = try walker.members(at: element.lowerBound)
            if let type = try structField(members, "type"), walker.kind(at: type.value.lowerBound) == .string {
                guard let text = try walker.decodedString(at: type.value.lowerBound, limit: 4096) else {
                    throw Refusal(message: "a tool's \"type\" is longer than any tool type")
                }
                let trimmed = text.unicodeScalars.drop { $0.properties.isWhitespace }
                if String(String.UnicodeScalarView(trimmed)).lowercased().hasPrefix("web_search") { return text }
            }
            if depth < 4, let nested = try structField(members, "tools"), walker.kind(at: nested.value.lowerBound) == .array,
               let type = try webSearchTool(in: nested.value.lowerBound, depth: depth + 1, walker: &walker) {
                return type
            }
        }
        return nil
    }
}
