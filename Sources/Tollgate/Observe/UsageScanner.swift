/// Finds the token counts Ollama reports in a response body as its bytes stream past, without buffering it.
///
/// The scanner follows the JSON itself (strings and their escapes, nesting, which string is a key) and the framing
/// around it (one JSON value, NDJSON lines, or server-sent events whose `data:` lines carry JSON), so a count is
/// taken only from the member Ollama writes it in, at its place in the object, never from text a model produced
/// (which is always inside a string) nor from a tool call's arguments (always nested deeper). Where the counts are:
///
/// | route | counts |
/// |---|---|
/// | `/api/generate`, `/api/chat` | `prompt_eval_count`, `eval_count` of the object with `"done": true` |
/// | `/api/embed` | `prompt_eval_count` of the response object |
/// | `/api/embeddings` | none reported: a complete response counts as 0 + 0 |
/// | `/v1/chat/completions`, `/v1/completions` | `usage.prompt_tokens`, `usage.completion_tokens`; streamed, of the last event with a usage, once `data: [DONE]` arrives |
/// | `/v1/embeddings` | `usage.prompt_tokens` |
/// | `/v1/responses` | `usage.input_tokens`, `usage.output_tokens`; streamed, `response.usage` of the `response.completed` event (or of `response.failed` when it has one) |
/// | `/v1/messages` | `usage.input_tokens`, `usage.output_tokens`; streamed, the `message_delta` event's usage (its input count, else `message_start`'s) |
///
/// Ollama leaves a zero count out (`omitempty`), so a missing count in a complete answer is 0. `usage` is nil until
/// the answer is complete: an error object, a stream cut short, a stream without usage give nil.
///
/// Value type; one per exchange, fed on its loop thread. State across feeds is a few integers and at most 32
/// bytes of one key.
public struct UsageScanner: Sendable {
    public let route: InferenceRoute

    /// The counts, once the response held a complete one.
    public var usage: TokenUsage? { complete ? counted : nil }
    /// The prompt count (for the access log), once complete.
    public var promptTokens: Int? { usage?.prompt }
    /// The completion count (for the access log), once complete.
    public var completionTokens: Int? { usage?.completion }

    public init(route: InferenceRoute) {
        self.route = route
        capture.reserveCapacity(32)
    }

    // MARK: - results

    private var counted = TokenUsage(prompt: 0, completion: 0)
    private var complete = false
    /// A streamed OpenAI count waiting for `data: [DONE]`.
    private var pending: TokenUsage?
    /// `message_start`'s input count (Anthropic streams).
    private var startInput: Int?

    // MARK: - framing

    private enum Framing: Sendable { case unknown, json, sse }
    private enum Line: Sendable {
        /// Matching `data:` at a line's start (bytes matched so far).
        case prefix(Int)
        /// After `data:`; the payload's first byte decides what it is.
        case payloadStart
        case payloadJSON
        /// Matching `[DONE]` (bytes matched so far; -1: not it).
        case payloadDone(Int)
        case skip
    }

    private var framing = Framing.unknown
    private var line = Line.prefix(0)

    // MARK: - JSON lexing

    private var depth = 0
    /// Bit d set: the container at depth d+1 is an object (depths up to 64 are tracked; deeper is never counted).
    private var objectBits: UInt64 = 0
    private var expectKey = false
    private var inString = false
    private var escaped = false
    private var stringIsKey = false
    private var capturing = false
    private var capture: [UInt8] = []
    private var captureSpoiled = false
    private var inNumber = false
    private var numberValue = 0
    private var numberValid = false
    private var inLiteral = false
    private var literalTrue = false
    /// The keys on the path to the current value, at depths 1...3 (index 0 unused).
    private var path: (Key, Key, Key, Key) = (.other, .other, .other, .other)
    private var choicesOpened = false
    private var facts = Facts()

    private enum Key: UInt8, Sendable {
        case other, promptEvalCount, evalCount, done, usage, promptTokens, completionTokens, inputTokens, outputTokens
        case type, response, message, choices, error

        init(_ bytes: [UInt8]) {
            switch bytes.count {
            case 4 where bytes.elementsEqual("done".utf8): self = .done
            case 4 where bytes.elementsEqual("type".utf8): self = .type
            case 5 where bytes.elementsEqual("usage".utf8): self = .usage
            case 5 where bytes.elementsEqual("error".utf8): self = .error
            case 7 where bytes.elementsEqual("message".utf8): self = .message
            case 7 where bytes.elementsEqual("choices".utf8): self = .choices
            case 8 where bytes.elementsEqual("response".utf8): self = .response
            case 10 where bytes.elementsEqual("eval_count".utf8): self = .evalCount
            case 12 where bytes.elementsEqual("input_tokens".utf8): self = .inputTokens
            case 13 where bytes.elementsEqual("prompt_tokens".utf8): self = .promptTokens
            case 13 where bytes.elementsEqual("output_tokens".utf8): self = .outputTokens
            case 17 where bytes.elementsEqual("prompt_eval_count".utf8): self = .promptEvalCount
            case 17 where bytes.elementsEqual("completion_tokens".utf8): self = .completionTokens
            default: self = .other
            }
        }
    }

    /// What one top-level object said.
    private struct Facts: Sendable {
        var done = false
        var error = false
        var promptEval: Int?
        var eval: Int?
        var hasUsage = false
        var usagePrompt: Int?
        var usageCompletion: Int?
        var usageIn: Int?
        var usageOut: Int?
        var responseIn: Int?
        var responseOut: Int?
        var messageIn: Int?
        var type: [UInt8] = []
    }

    // MARK: - feeding

    /// Feeds the response body bytes `buffer[range]` (de-chunked), in order.
    public mutating func feed(_ buffer: [UInt8], _ range: Range<Int>) {
        var i = range.lowerBound
        while i < range.upperBound {
            let b = buffer[i]
            i += 1
            switch framing {
            case .json:
                lex(b)
            case .sse:
                sse(b)
            case .unknown:
                if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { continue }
                framing = b == UInt8(ascii: "{") || b == UInt8(ascii: "[") ? .json : .sse
                if framing == .json { lex(b) } else { sse(b) }
            }
        }
    }

    private mutating func sse(_ b: UInt8) {
        if b == 0x0A || b == 0x0D {
            if case .payloadDone(6) = line { sawDone() }
            // A data line ends its JSON value: an object left open here is not counted.
            if depth != 0 || inString || inNumber || inLiteral { resetLexer() }
            line = .prefix(0)
            return
        }
        switch line {
        case .prefix(let n):
            let want: [UInt8] = [0x64, 0x61, 0x74, 0x61, 0x3A]  // "data:"
            line = b == want[n] ? (n == 4 ? .payloadStart : .prefix(n + 1)) : .skip
        case .payloadStart:
            if b == 0x20 { return }  // one optional space (more would be payload; Ollama writes one)
            if b == UInt8(ascii: "{") {
                line = .payloadJSON
                lex(b)
            } else if b == UInt8(ascii: "[") {
                line = .payloadDone(1)
            } else {
                line = .skip
            }
        case .payloadJSON:
            lex(b)
        case .payloadDone(let n):
            let want: [UInt8] = [0x5B, 0x44, 0x4F, 0x4E, 0x45, 0x5D]  // "[DONE]"
            line = n < 6 && b == want[n] ? .payloadDone(n + 1) : .skip
        case .skip:
            return
        }
    }

    private mutating func resetLexer() {
        depth = 0
        objectBits = 0
        expectKey = false
        inString = false
        escaped = false
        capturing = false
        inNumber = false
        inLiteral = false
        choicesOpened = false
    }

    private var inObject: Bool { depth >= 1 && depth <= 64 && objectBits & (1 << UInt64(depth - 1)) != 0 }

    private mutating func lex(_ b: UInt8) {
        if inString {
            if escaped {
                escaped = false
            } else if b == UInt8(ascii: "\\") {
                escaped = true
                captureSpoiled = true  // no name Tollgate reads has an escape; Ollama writes them plain
            } else if b == UInt8(ascii: "\"") {
                inString = false
                endString()
            } else if capturing {
                if capture.count < 32 { capture.append(b) } else { captureSpoiled = true }
            }
            return
        }
        if inNumber {
            if b >= 0x30 && b <= 0x39 {
                if numberValue < 100_000_000_000_000 { numberValue = numberValue * 10 + Int(b - 0x30) } else { numberValid = false }
                return
            }
            if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") {
                numberValid = false
                return
            }
            endScalar()
        } else if inLiteral {
            if b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") { return }
            endScalar()
        }
        let wasChoicesOpened = choicesOpened
        choicesOpened = false
        switch b {
        case 0x20, 0x09, 0x0A, 0x0D:
            choicesOpened = wasChoicesOpened
        case UInt8(ascii: "{"):
            open(object: true)
            if depth == 1 { facts = Facts() }
            if depth == 2 && path.1 == .usage { facts.hasUsage = true }
        case UInt8(ascii: "["):
            open(object: false)
            choicesOpened = depth == 2 && path.1 == .choices
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            guard depth > 0 else { return }
            depth -= 1
            expectKey = false
            if depth == 0 && b == UInt8(ascii: "}") { objectEnded() }
        case UInt8(ascii: ","):
            expectKey = inObject
        case UInt8(ascii: ":"):
            expectKey = false
        case UInt8(ascii: "\""):
            inString = true
            escaped = false
            stringIsKey = expectKey && inObject
            capturing = depth >= 1 && depth <= 3 && (stringIsKey || (depth == 1 && path.1 == .type))
            capture.removeAll(keepingCapacity: true)
            captureSpoiled = false
        case UInt8(ascii: "-"):
            inNumber = true
            numberValue = 0
            numberValid = false  // a negative count is not a count
        case 0x30...0x39:
            inNumber = true
            numberValue = Int(b - 0x30)
            numberValid = true
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            inLiteral = true
            literalTrue = b == UInt8(ascii: "t")
        default:
            break
        }
    }

    private mutating func open(object: Bool) {
        depth += 1
        if depth <= 64 {
            let bit: UInt64 = 1 << UInt64(depth - 1)
            if object { objectBits |= bit } else { objectBits &= ~bit }
        }
        expectKey = object
        setKey(.other)
    }

    private mutating func setKey(_ key: Key) {
        switch depth {
        case 1: path.1 = key
        case 2: path.2 = key
        case 3: path.3 = key
        default: break
        }
    }

    private mutating func endString() {
        defer { capturing = false }
        if stringIsKey {
            let key = capturing && !captureSpoiled ? Key(capture) : .other
            setKey(key)
            if depth == 1 && key == .error { facts.error = true }
            return
        }
        if capturing && !captureSpoiled && depth == 1 && path.1 == .type { facts.type = capture }
    }

    private mutating func endScalar() {
        if inNumber {
            inNumber = false
            if numberValid { number(numberValue) }
        } else if inLiteral {
            inLiteral = false
            if literalTrue && depth == 1 && path.1 == .done { facts.done = true }
        }
    }

    private mutating func number(_ n: Int) {
        switch depth {
        case 1:
            switch path.1 {
            case .promptEvalCount: facts.promptEval = n
            case .evalCount: facts.eval = n
            default: break
            }
        case 2 where path.1 == .usage:
            switch path.2 {
            case .promptTokens: facts.usagePrompt = n
            case .completionTokens: facts.usageCompletion = n
            case .inputTokens: facts.usageIn = n
            case .outputTokens: facts.usageOut = n
            default: break
            }
        case 3 where path.2 == .usage:
            if path.1 == .response {
                if path.3 == .inputTokens { facts.responseIn = n }
                if path.3 == .outputTokens { facts.responseOut = n }
            } else if path.1 == .message && path.3 == .inputTokens {
                facts.messageIn = n
            }
        default:
            break
        }
    }

    private static let completedType = Array("response.completed".utf8)
    private static let failedType = Array("response.failed".utf8)
    private static let messageStartType = Array("message_start".utf8)
    private static let messageDeltaType = Array("message_delta".utf8)

    /// A top-level object ended: what it says for this route.
    private mutating func objectEnded() {
        let f = facts
        let streamed = framing == .sse
        switch route {
        case .generate, .chat:
            if f.done && !f.error { finish(f.promptEval ?? 0, f.eval ?? 0) }
        case .embed:
            if !f.error { finish(f.promptEval ?? 0, 0) }
        case .embeddings:
            if !f.error { finish(0, 0) }
        case .chatCompletions, .completions:
            guard f.hasUsage else { return }
            let u = TokenUsage(prompt: f.usagePrompt ?? 0, completion: f.usageCompletion ?? 0)
            if streamed { pending = u } else { finish(u.prompt, u.completion) }
        case .openAIEmbeddings:
            if f.hasUsage && !streamed { finish(f.usagePrompt ?? 0, 0) }
        case .responses:
            if !streamed {
                if f.hasUsage { finish(f.usageIn ?? 0, f.usageOut ?? 0) }
            } else if f.type == Self.completedType || f.type == Self.failedType,
                      f.responseIn != nil || f.responseOut != nil {
                // A failed web-search loop reports what it spent too.
                finish(f.responseIn ?? 0, f.responseOut ?? 0)
            }
        case .messages:
            if !streamed {
                if f.hasUsage { finish(f.usageIn ?? 0, f.usageOut ?? 0) }
            } else if f.type == Self.messageStartType {
                startInput = f.messageIn
            } else if f.type == Self.messageDeltaType, f.hasUsage {
                finish(f.usageIn ?? startInput ?? 0, f.usageOut ?? 0)
            }
        }
    }

    private mutating func sawDone() {
        guard let p = pending else { return }
        finish(p.prompt, p.completion)
    }

    private mutating func finish(_ prompt: Int, _ completion: Int) {
        counted = TokenUsage(prompt: prompt, completion: completion)
        complete = true
    }
}
