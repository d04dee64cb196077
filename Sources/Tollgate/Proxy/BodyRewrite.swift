/// Rewrites a complete inference request body so that Ollama reads the caps of `GenerationLimits`, and asks for
/// the token counts a streamed OpenAI response leaves out unless asked (`stream_options.include_usage`).
///
/// Ollama reads these fields with Go's `encoding/json` (see `BodyModel` for the rest of how it reads a body):
/// - struct fields (`options`, `keep_alive`, `stream`, `stream_options`, `include_usage`, `max_tokens`,
///   `max_output_tokens`) match keys case-insensitively, where `K` (U+212A) folds to `k`, `ſ` (U+017F) to `s`, and
///   from Go 1.21 `ı` (U+0131) and `İ` (U+0130) to `i`; the last duplicate wins, and a duplicate object decodes
///   into the one before it (merging);
/// - `options` is a `map[string]any`: its keys match exactly, and `Options.FromMap` truncates a number to an integer
///   (null is skipped, any other type fails the request).
/// So a clamp is applied only where it is unambiguous: a key that folds to a clamped field without being spelled
/// exactly, or a clamped field given twice, is refused (400 in the caller's API shape) rather than guessed at. Only
/// the values that change are replaced, and members are inserted right after an object's `{`: every other byte
/// of the body is forwarded as sent. A body that needs no change is not copied (`Plan.body` is nil).
///
/// Pure; loop thread or any.
public enum BodyRewrite {
    /// What to forward.
    public struct Plan: Equatable, Sendable {
        /// The rewritten body, or nil to forward the body as it is.
        public var body: [UInt8]?
        /// The fields lowered or set, in body order of fields: num_ctx, num_predict/max_tokens, keep_alive.
        public var lowered: [LoweredField] = []
        /// `stream_options.include_usage` was set for a streamed OpenAI request that did not ask for usage: the
        /// response's usage chunk is Tollgate's, removed before the client sees it.
        public var usageInjected = false
        /// The most tokens the generation may produce once forwarded: nil when unbounded (or not known: a route
        /// whose cap was not set); 0 on the embedding routes, which generate nothing.
        public var generationCap: Int?
    }

    /// A body whose clamped fields Tollgate cannot read unambiguously, or which Ollama would refuse for them anyway.
    public struct Refusal: Error, Equatable, Sendable {
        public var message: String
    }

    /// Plans the rewrite of `body` (a complete JSON object, as `BodyModel.read` accepted it) on `route`.
    /// `countUsage`: ask a streamed OpenAI response for its usage.
    public static func plan(_ body: [UInt8], route: InferenceRoute, limits: GenerationLimits?,
                            countUsage: Bool) -> Result<Plan, Refusal> {
        var limits = limits ?? GenerationLimits()
        // 0 and negative values mean "unlimited" to Ollama: the smallest cap that can be written is 1 (a spent
        // quota is refused before it gets here).
        limits.maxPredict = limits.maxPredict.map { max(1, $0) }
        limits.maxContext = limits.maxContext.map { max(1, $0) }
        if let keep = limits.keepAlive { limits.keepAlive?.seconds = max(0, keep.seconds) }
        let injects = countUsage && route.streamsWithoutUsage
        var plan = Plan()
        if !route.generates { plan.generationCap = 0 }
        if limits.isEmpty && !injects { return .success(plan) }
        var walker = Walker(body)
        do {
            let top = try walker.members(at: walker.firstNonSpace())
            var edits: [Edit] = []
            switch route {
            case .generate, .chat, .embed, .embeddings:
                try options(top, route: route, limits: limits, walker: &walker, edits: &edits, plan: &plan)
                if limits.keepAlive != nil || limits.pinned {
                    try keepAlive(top, cap: limits.keepAlive, pinned: limits.pinned, walker: &walker, edits: &edits,
                                  plan: &plan)
                }
            case .chatCompletions, .completions:
                if let cap = limits.maxPredict {
                    try pointerInt(top, "max_tokens", cap: cap, walker: &walker, edits: &edits, plan: &plan)
                }
                if injects { try includeUsage(top, walker: &walker, edits: &edits, plan: &plan) }
            case .responses:
                if let cap = limits.maxPredict {
                    try pointerInt(top, "max_output_tokens", cap: cap, walker: &walker, edits: &edits, plan: &plan)
                }
            case .messages:
                if let cap = limits.maxPredict { try messagesMaxTokens(top, cap: cap, walker: &walker, edits: &edits, plan: &plan) }
            case .openAIEmbeddings:
                break
            }
            if !edits.isEmpty { plan.body = apply(edits, to: body) }
        } catch let refusal as Refusal {
            return .failure(refusal)
        } catch {
            return .failure(Refusal(message: "the body is not valid JSON"))
        }
        return .success(plan)
    }

    // MARK: - the routes' fields

    /// `options.num_ctx` and `options.num_predict` (generating routes) in Ollama's options map.
    private static func options(_ top: [Member], route: InferenceRoute, limits: GenerationLimits, walker: inout Walker,
                                edits: inout [Edit], plan: inout Plan) throws {
        let predictCap = route.generates ? limits.maxPredict : nil
        let contextCap = limits.maxContext
        guard predictCap != nil || contextCap != nil || limits.pinned else {
            if route.generates { plan.generationCap = try currentPredict(top, walker: &walker) }
            return
        }
        let field = try structField(top, "options")
        var inner: [Member] = []
        var objectStart: Int?
        if let field {
            switch walker.kind(at: field.value.lowerBound) {
            case .object:
                objectStart = field.value.lowerBound
                inner = try walker.members(at: field.value.lowerBound)
            case .null:
                break
            default:
                throw Refusal(message: "\"options\" must be an object")
            }
        }
        // Inserted members, written together (into the options object, or as a new one); replaced values inside the
        // object; members removed from it.
        var added: [(String, Int)] = []
        var inOptions: [Edit] = []
        var removed = Set<Int>()
        if let cap = contextCap {
            // Absent or null, Ollama picks its own default context, which it sizes from the GPU's memory (up to
            // the model's whole training context): the cap is set instead.
            let ctx = try mapKey(inner, "num_ctx")
            var current: OptionInt = .absent
            if let ctx { current = try optionInt(ctx, walker: &walker) }
            switch (current, ctx) {
            case (.value(let n), _) where n == cap || (n >= 1 && n < cap && !limits.pinned):
                break
            case (_, let ctx?):
                inOptions.append(Edit(at: ctx.value, text: String(cap)))
                let from = walker.isNull(ctx.value) ? nil : walker.text(ctx.value)
                plan.lowered.append(LoweredField(field: "num_ctx", from: from, to: cap))
            case (_, nil):
                added.append(("num_ctx", cap))
                plan.lowered.append(LoweredField(field: "num_ctx", from: nil, to: cap))
            }
        } else if limits.pinned, let ctx = try mapKey(inner, "num_ctx") {
            // No cap to pin it to: the context the server loads the model with by default, which only an absent key
            // gives (Ollama tells a key sent as null from an absent one: null turns its automatic context off).
            _ = try optionInt(ctx, walker: &walker)
            removed.formUnion(inner.indices.filter { inner[$0].keyStart == ctx.keyStart })
            plan.lowered.append(LoweredField(field: "num_ctx", from: walker.isNull(ctx.value) ? nil : walker.text(ctx.value), to: nil))
        }
        if limits.pinned {
            // A runner option sent as null passed the override check (a value would not have), but Ollama tests
            // whether the key is present (automatic batch, draft predictions): it goes.
            for (i, m) in inner.enumerated() where walker.isNull(m.value) {
                guard let key = m.key, !samplingOptions.contains(key), key != Array("num_ctx".utf8) else { continue }
                removed.insert(i)
                plan.lowered.append(LoweredField(field: String(decoding: key, as: UTF8.self), from: nil, to: nil))
            }
        }
        if let cap = predictCap {
            let member = try mapKey(inner, "num_predict")
            var current: Int?
            if let member, case .value(let n) = try optionInt(member, walker: &walker) { current = n }
            if let n = current, n >= 1, n <= cap {
                plan.generationCap = n
            } else {
                // Absent, null, 0 (unlimited), -1 (infinite), -2 (fill the context) or over the cap.
                plan.generationCap = cap
                let from = member.flatMap { walker.isNull($0.value) ? nil : walker.text($0.value) }
                if let member {
                    inOptions.append(Edit(at: member.value, text: String(cap)))
                } else {
                    added.append(("num_predict", cap))
                }
                plan.lowered.append(LoweredField(field: "num_predict", from: from, to: cap))
            }
        } else if route.generates {
            plan.generationCap = try currentPredict(top, walker: &walker)
        }
        let addedText = added.map { "\"\($0.0)\":\($0.1)" }
        if !removed.isEmpty, let field {
            // The object is written again: each kept member's bytes as sent (its value replaced where capped), then
            // the added ones.
            var parts: [String] = []
            for (i, m) in inner.enumerated() where !removed.contains(i) {
                let keyText = String(decoding: walker.bytes[m.keyStart..<m.value.lowerBound], as: UTF8.self)
                if let replaced = inOptions.first(where: { $0.at == m.value }) {
                    parts.append(keyText + replaced.text)
                } else {
                    parts.append(keyText + String(decoding: walker.bytes[m.value], as: UTF8.self))
                }
            }
            edits.append(Edit(at: field.value, text: "{" + (parts + addedText).joined(separator: ",") + "}"))
            return
        }
        edits.append(contentsOf: inOptions)
        guard !added.isEmpty else { return }
        let members = addedText.joined(separator: ",")
        if let objectStart {
            edits.append(insertion(inner, at: objectStart, member: members))
        } else if let field {
            edits.append(Edit(at: field.value, text: "{" + members + "}"))  // it was null
        } else {
            edits.append(insertion(top, at: walker.firstNonSpace(), member: "\"options\":{" + members + "}"))
        }
    }

    /// The generation cap a native body asks for, unchanged: nil when unbounded.
    private static func currentPredict(_ top: [Member], walker: inout Walker) throws -> Int? {
        guard let field = try? structField(top, "options"), walker.kind(at: field.value.lowerBound) == .object,
              let inner = try? walker.members(at: field.value.lowerBound), let member = try? mapKey(inner, "num_predict"),
              case .value(let n)? = try? optionInt(member, walker: &walker), n >= 1 else { return nil }
        return n
    }

    /// `keep_alive`: capped (forever counts as over any cap), or set when absent with `replaceAbsent`; `pinned`:
    /// any other value than the cap becomes the cap, or null (the server's default) without one.
    private static func keepAlive(_ top: [Member], cap: KeepAliveLimit?, pinned: Bool, walker: inout Walker,
                                  edits: inout [Edit], plan: inout Plan) throws {
        let field = try structField(top, "keep_alive")
        if let field, !walker.isNull(field.value) {
            let seconds = try keepAliveSeconds(field, walker: &walker)
            guard let cap else {
                // Pinned without a cap: the server's default.
                edits.append(Edit(at: field.value, text: "null"))
                plan.lowered.append(LoweredField(field: "keep_alive", from: walker.text(field.value), to: nil))
                return
            }
            guard pinned ? seconds != Double(cap.seconds) : seconds > Double(cap.seconds) else { return }
            edits.append(Edit(at: field.value, text: String(cap.seconds)))
            plan.lowered.append(LoweredField(field: "keep_alive", from: walker.text(field.value), to: cap.seconds))
        } else if let cap, cap.replaceAbsent {
            if let field {
                edits.append(Edit(at: field.value, text: String(cap.seconds)))
            } else {
                edits.append(insertion(top, at: walker.firstNonSpace(), member: "\"keep_alive\":\(cap.seconds)"))
            }
            plan.lowered.append(LoweredField(field: "keep_alive", from: nil, to: cap.seconds))
        }
    }

    /// A `keep_alive` member's value in seconds as Ollama reads it (a number of seconds or a Go duration; negative,
    /// meaning forever, is infinite).
    static func keepAliveSeconds(_ field: Member, walker: inout Walker) throws -> Double {
        switch walker.kind(at: field.value.lowerBound) {
        case .number:
            guard let v = walker.double(field.value) else { throw Refusal(message: "\"keep_alive\" is not a number Go can read") }
            return v < 0 ? .infinity : v
        case .string:
            let text = try walker.decodedString(at: field.value.lowerBound)
            guard let d = GoDuration.seconds(text) else {
                throw Refusal(message: "\"keep_alive\" must be a number of seconds or a duration such as \"5m\"")
            }
            return d < 0 ? .infinity : d
        default:
            throw Refusal(message: "\"keep_alive\" must be a number of seconds or a duration such as \"5m\"")
        }
    }

    /// A `*int` struct field read as `num_predict` (`max_tokens`, `max_output_tokens`): absent, null, zero or
    /// negative mean unlimited and become the cap, as does a value over it.
    private static func pointerInt(_ top: [Member], _ name: StaticString, cap: Int, walker: inout Walker,
                                   edits: inout [Edit], plan: inout Plan) throws {
        let fieldName = name.description
        let field = try structField(top, name)
        if let field, !walker.isNull(field.value) {
            guard let n = walker.goInt(field.value) else {
                throw Refusal(message: "\"\(fieldName)\" must be an integer")
            }
            if n >= 1 && n <= cap {
                plan.generationCap = n
                return
            }
            edits.append(Edit(at: field.value, text: String(cap)))
            plan.lowered.append(LoweredField(field: fieldName, from: walker.text(field.value), to: cap))
        } else {
            if let field {
                edits.append(Edit(at: field.value, text: String(cap)))
            } else {
                edits.append(insertion(top, at: walker.firstNonSpace(), member: "\"\(fieldName)\":\(cap)"))
            }
            plan.lowered.append(LoweredField(field: fieldName, from: nil, to: cap))
        }
        plan.generationCap = cap
    }

    /// `/v1/messages`' `max_tokens` (an `int` Ollama requires to be positive): lowered when over the cap; a body
    /// without a positive one is left for Ollama to refuse.
    private static func messagesMaxTokens(_ top: [Member], cap: Int, walker: inout Walker, edits: inout [Edit],
                                          plan: inout Plan) throws {
        guard let field = try structField(top, "max_tokens"), !walker.isNull(field.value) else { return }
        guard let n = walker.goInt(field.value) else { throw Refusal(message: "\"max_tokens\" must be an integer") }
        guard n > cap else {
            plan.generationCap = n >= 1 ? n : nil
            return
        }
        edits.append(Edit(at: field.value, text: String(cap)))
        plan.lowered.append(LoweredField(field: "max_tokens", from: walker.text(field.value), to: cap))
        plan.generationCap = cap
    }

    /// `"stream": true` without `stream_options.include_usage: true`: sets it, creating what is missing.
    private static func includeUsage(_ top: [Member], walker: inout Walker, edits: inout [Edit], plan: inout Plan) throws {
        guard let stream = try structField(top, "stream") else { return }
        switch walker.kind(at: stream.value.lowerBound) {
        case .trueLiteral: break
        case .falseLiteral, .null: return
        default: throw Refusal(message: "\"stream\" must be a boolean")
        }
        let options = try structField(top, "stream_options")
        if let options, walker.kind(at: options.value.lowerBound) == .object {
            let inner = try walker.members(at: options.value.lowerBound)
            if let include = try structField(inner, "include_usage") {
                switch walker.kind(at: include.value.lowerBound) {
                case .trueLiteral: return  // the client asked: its usage chunk is its own
                case .falseLiteral, .null: edits.append(Edit(at: include.value, text: "true"))
                default: throw Refusal(message: "\"include_usage\" must be a boolean")
                }
            } else {
                edits.append(insertion(inner, at: options.value.lowerBound, member: "\"include_usage\":true"))
            }
        } else if let options {
            guard walker.isNull(options.value) else { throw Refusal(message: "\"stream_options\" must be an object") }
            edits.append(Edit(at: options.value, text: "{\"include_usage\":true}"))
        } else {
            edits.append(insertion(top, at: walker.firstNonSpace(), member: "\"stream_options\":{\"include_usage\":true}"))
        }
        plan.usageInjected = true
    }

    // MARK: - reading members as Go does

    /// The one member Go decodes into struct field `name` (lowercase ASCII), or nil. Refuses a key that Go would
    /// match without it being spelled exactly (case, or K/ſ/ı/İ), and a second one.
    static func structField(_ members: [Member], _ name: StaticString) throws -> Member? {
        let want = name.withUTF8Buffer { Array($0) }
        var found: Member?
        for m in members {
            guard let key = m.key, GoFold.matches(key, want) else { continue }
            guard key == want else {
                throw Refusal(message: "the body spells \"\(name)\" as \"\(String(decoding: key, as: UTF8.self))\"; send it exactly as \"\(name)\"")
            }
            guard found == nil else { throw Refusal(message: "the body gives \"\(name)\" more than once") }
            found = m
        }
        return found
    }

    /// The one member of Ollama's options map with key `name` exactly (other spellings are ignored by Ollama).
    static func mapKey(_ members: [Member], _ name: StaticString) throws -> Member? {
        let want = name.withUTF8Buffer { Array($0) }
        var found: Member?
        for m in members where m.key == want {
            guard found == nil else { throw Refusal(message: "the body gives \"options.\(name)\" more than once") }
            found = m
        }
        return found
    }

    enum OptionInt {
        case absent
        case value(Int)
    }

    /// An integer option as `Options.FromMap` reads it: null is skipped, a number is truncated toward zero (one
    /// beyond Int's range counts as the largest), anything else fails the request in Ollama and is refused here.
    static func optionInt(_ m: Member, walker: inout Walker) throws -> OptionInt {
        if walker.isNull(m.value) { return .absent }
        guard walker.kind(at: m.value.lowerBound) == .number, let d = walker.double(m.value) else {
            throw Refusal(message: "option \"\(String(decoding: m.key ?? [], as: UTF8.self))\" must be of type integer")
        }
        if d >= 9.2e18 { return .value(Int.max) }
        if d <= -9.2e18 { return .value(Int.min) }
        return .value(Int(d.rounded(.towardZero)))
    }

    /// Inserting `member` as the first member of the object at `objectStart` whose members are `members`.
    static func insertion(_ members: [Member], at objectStart: Int, member: String) -> Edit {
        Edit(at: objectStart + 1..<objectStart + 1, text: member, intoEmpty: members.isEmpty)
    }

    // MARK: - edits

    /// Replaces `at` of the body with `text`; or, with `intoEmpty` set, inserts `text` as a member at `at` (right
    /// after an object's `{`; whether that object has members decides the commas).
    struct Edit {
        var at: Range<Int>
        var text: String
        var intoEmpty: Bool?
    }

    static func apply(_ edits: [Edit], to body: [UInt8]) -> [UInt8] {
        let sorted = edits.enumerated().sorted {
            ($0.element.at.lowerBound, $0.offset) < ($1.element.at.lowerBound, $1.offset)
        }.map(\.element)
        var out: [UInt8] = []
        out.reserveCapacity(body.count + sorted.reduce(0) { $0 + $1.text.utf8.count + 1 })
        var i = 0
        var k = 0
        while k < sorted.count {
            let edit = sorted[k]
            out.append(contentsOf: body[i..<edit.at.lowerBound])
            if let intoEmpty = edit.intoEmpty {
                // Every member inserted into the same object goes in together, comma-separated.
                var texts = [edit.text]
                while k + 1 < sorted.count, sorted[k + 1].intoEmpty != nil, sorted[k + 1].at == edit.at {
                    k += 1
                    texts.append(sorted[k].text)
                }
                out.append(contentsOf: texts.joined(separator: ",").utf8)
                if !intoEmpty { out.append(UInt8(ascii: ",")) }
            } else {
                out.append(contentsOf: edit.text.utf8)
            }
            i = edit.at.upperBound
            k += 1
        }
        out.append(contentsOf: body[i...])
        return out
    }
}
