/// Finds token counts and the model name in bytes as they stream past, without buffering the stream.
///
/// Ollama's final `"done": true` line carries `prompt_eval_count` and `eval_count`; OpenAI-shaped responses carry
/// `usage: {prompt_tokens, completion_tokens}`; request bodies carry `"model": "…"`. The scanner is fed every chunk
/// relayed and keeps only a few bytes of state across chunk boundaries. The last value seen wins (a stream's final
/// line has the totals). Values are read from JSON written by Ollama; anything malformed is simply not counted.
public struct UsageScanner: Sendable {
    public private(set) var promptTokens: Int?
    public private(set) var completionTokens: Int?
    public private(set) var model: String?

    private enum Key: CaseIterable {
        case promptEvalCount, evalCount, promptTokens, completionTokens, model

        var bytes: [UInt8] {
            switch self {
            case .promptEvalCount: return Array("\"prompt_eval_count\"".utf8)
            case .evalCount: return Array("\"eval_count\"".utf8)
            case .promptTokens: return Array("\"prompt_tokens\"".utf8)
            case .completionTokens: return Array("\"completion_tokens\"".utf8)
            case .model: return Array("\"model\"".utf8)
            }
        }
    }

    private enum State: Sendable {
        case scanning
        /// Matched `count` bytes of a key.
        case matching(Key, Int)
        /// After a key: skipping whitespace and the colon.
        case colon(Key, sawColon: Bool)
        case number(Key, Int, digits: Int)
        case string(Key, [UInt8], escaped: Bool)
    }

    private var state: State = .scanning
    private let keys: [Key]
    private let keyBytes: [[UInt8]]
    private let wantsModel: Bool

    /// A scanner for responses (token counts), or for request bodies (`model`) when `model` is true.
    public init(model: Bool = false) {
        wantsModel = model
        keys = model ? [.model] : [.promptEvalCount, .evalCount, .promptTokens, .completionTokens]
        keyBytes = keys.map(\.bytes)
    }

    /// Feeds buffer[range].
    public mutating func feed(_ buffer: [UInt8], _ range: Range<Int>) {
        if wantsModel && model != nil { return }
        var i = range.lowerBound
        while i < range.upperBound {
            let b = buffer[i]
            switch state {
            case .scanning:
                if b == UInt8(ascii: "\"") { state = .matching(keys[0], 1); startMatch() }
            case .matching(let key, let n):
                advanceMatch(key, n, b)
            case .colon(let key, let sawColon):
                if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D {
                    break
                } else if b == UInt8(ascii: ":") && !sawColon {
                    state = .colon(key, sawColon: true)
                } else if sawColon && key == .model && b == UInt8(ascii: "\"") {
                    state = .string(key, [], escaped: false)
                } else if sawColon && key != .model && b >= 0x30 && b <= 0x39 {
                    state = .number(key, Int(b - 0x30), digits: 1)
                } else {
                    state = .scanning
                    continue  // this byte may start a key
                }
            case .number(let key, let value, let digits):
                if b >= 0x30 && b <= 0x39 && digits < 15 {
                    state = .number(key, value * 10 + Int(b - 0x30), digits: digits + 1)
                } else {
                    record(key, value)
                    state = .scanning
                    continue
                }
            case .string(let key, var bytes, let escaped):
                if escaped {
                    bytes.append(b)
                    state = .string(key, bytes, escaped: false)
                } else if b == UInt8(ascii: "\\") {
                    state = .string(key, bytes, escaped: true)
                } else if b == UInt8(ascii: "\"") {
                    model = String(decoding: bytes, as: UTF8.self)
                    state = .scanning
                    if wantsModel { return }
                } else if bytes.count < 256 {
                    bytes.append(b)
                    state = .string(key, bytes, escaped: false)
                } else {
                    state = .scanning
                }
            }
            i += 1
        }
    }

    // A key is matched against every candidate at once: `candidates` narrows as bytes arrive.
    private var candidates: [Bool] = []

    private mutating func startMatch() {
        candidates = Array(repeating: true, count: keys.count)
    }

    private mutating func advanceMatch(_ key: Key, _ n: Int, _ b: UInt8) {
        var any = false
        var done: Key?
        for k in 0..<keys.count where candidates[k] {
            let kb = keyBytes[k]
            if n < kb.count && kb[n] == b {
                any = true
                if n + 1 == kb.count { done = keys[k] }
            } else {
                candidates[k] = false
            }
        }
        if let done {
            state = .colon(done, sawColon: false)
        } else if any {
            state = .matching(key, n + 1)
        } else {
            // A quote here could open a key: restart matching from it.
            if b == UInt8(ascii: "\"") { state = .matching(keys[0], 1); startMatch() } else { state = .scanning }
        }
    }

    private mutating func record(_ key: Key, _ value: Int) {
        switch key {
        case .promptEvalCount, .promptTokens: promptTokens = value
        case .evalCount, .completionTokens: completionTokens = value
        case .model: break
        }
    }
}
