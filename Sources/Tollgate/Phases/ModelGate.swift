/// Reads a JSON request body as it streams to Ollama and decides, at its end, which model Ollama will use, the
/// way Go's `encoding/json` does: only top-level keys count, keys match case-insensitively, escapes are decoded, and
/// the last occurrence wins (`null` leaves the previous value). Until the body ends, the top-level object's closing
/// brace and what follows are held back (`feed` says how much may be forwarded), so Ollama can never finish
/// decoding a request the gate has not approved: if it refuses, the upstream connection is closed mid-body and
/// nothing runs.
///
/// Pure state machine, no I/O; memory is bounded (keys and the model name are capped, held bytes are the tail
/// after the closing brace, at most `maxHeld`).
public struct ModelGate: Sendable {
    public enum Verdict: Sendable, Equatable {
        case model(String)
        /// The body named no model (or not as a string), was not a JSON object, or ended inside it.
        case invalid(String)
    }

    private enum Mode: Sendable {
        case start          // before the top-level '{'
        case structure      // between tokens
        case string         // inside a string
        case literal        // inside a number, true, false or null
        case done           // after the top-level '}' (everything held)
        case failed(String)
    }

    private var mode: Mode = .start
    private var depth = 0
    private var escape = 0              // 0 none; 1 after '\'; 2...5 reading \uXXXX digits
    private var unicode: UInt32 = 0
    /// At depth 1, the next string is a key.
    private var expectKey = false
    /// The string being read is a depth-1 key / the value of a "model" key.
    private var readingKey = false
    private var readingModel = false
    private var afterModelKey = false
    private var key: [UInt8] = []
    private var value: [UInt8] = []
    private var literal: [UInt8] = []
    private var keyOverflow = false
    private var model: String?
    private var modelInvalid = false
    /// Bytes after (and including) the top-level closing brace, held until `finish`.
    public private(set) var held: [UInt8] = []
    public static let maxHeld = 4096
    static let maxKey = 64
    static let maxModel = 256

    public init() {}

    /// Scans buffer[range]; returns how many of its leading bytes may be forwarded now. The rest is kept in `held`.
    public mutating func feed(_ buffer: [UInt8], _ range: Range<Int>) -> Int {
        var i = range.lowerBound
        while i < range.upperBound {
            if case .done = mode {
                held.append(contentsOf: buffer[i..<range.upperBound].prefix(ModelGate.maxHeld - held.count))
                return i - range.lowerBound
            }
            if case .failed = mode { return range.count }
            let b = buffer[i]
            if step(b) {
                // This byte closed the top-level object: hold it and everything after it.
                held.append(b)
                held.append(contentsOf: buffer[(i + 1)..<range.upperBound].prefix(ModelGate.maxHeld - held.count))
                return i - range.lowerBound
            }
            i += 1
        }
        return range.count
    }

    /// The verdict once the whole body was fed.
    public func finish() -> Verdict {
        switch mode {
        case .failed(let why): return .invalid(why)
        case .done: break
        default: return .invalid("the body is not a complete JSON object")
        }
        if modelInvalid { return .invalid("\"model\" must be a string") }
        guard let model else { return .invalid("the body names no \"model\"") }
        return .model(model)
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    /// Consumes one byte; true when it is the top-level closing brace.
    private mutating func step(_ b: UInt8) -> Bool {
        switch mode {
        case .start:
            if ModelGate.isSpace(b) { return false }
            guard b == UInt8(ascii: "{") else { mode = .failed("the body is not a JSON object"); return false }
            depth = 1
            expectKey = true
            mode = .structure
        case .string:
            stringByte(b)
        case .literal:
            if b == UInt8(ascii: ",") || b == UInt8(ascii: "}") || b == UInt8(ascii: "]") || ModelGate.isSpace(b) {
                endLiteral()
                mode = .structure
                return structural(b)
            }
            if literal.count < 8 { literal.append(b) }
        case .structure:
            return structural(b)
        case .done, .failed:
            break
        }
        return false
    }

    private mutating func structural(_ b: UInt8) -> Bool {
        switch b {
        case 0x20, 0x09, 0x0A, 0x0D:
            break
        case UInt8(ascii: "\""):
            mode = .string
            escape = 0
            readingKey = depth == 1 && expectKey
            readingModel = depth == 1 && afterModelKey
            if readingKey { key.removeAll(keepingCapacity: true); keyOverflow = false }
            if readingModel { value.removeAll(keepingCapacity: true) }
            expectKey = false
        case UInt8(ascii: ":"):
            if depth == 1 { afterModelKey = !keyOverflow && ModelGate.isModelKey(key); key.removeAll() }
        case UInt8(ascii: ","):
            if depth == 1 { expectKey = true; afterModelKey = false }
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            if depth == 1 && afterModelKey { modelInvalid = true; afterModelKey = false }
            depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            depth -= 1
            if depth == 0 {
                mode = .done
                return true
            }
            if depth < 0 { mode = .failed("unbalanced JSON") }
        default:
            // A number, true, false or null.
            mode = .literal
            literal = [b]
        }
        return false
    }

    private mutating func endLiteral() {
        guard depth == 1 && afterModelKey else { return }
        afterModelKey = false
        // Go leaves a string field unchanged for null and fails the request for anything else.
        if literal != Array("null".utf8) { modelInvalid = true }
    }

    private mutating func stringByte(_ b: UInt8) {
        if escape == 1 {
            escape = 0
            switch b {
            case UInt8(ascii: "b"): emit(0x08)
            case UInt8(ascii: "f"): emit(0x0C)
            case UInt8(ascii: "n"): emit(0x0A)
            case UInt8(ascii: "r"): emit(0x0D)
            case UInt8(ascii: "t"): emit(0x09)
            case UInt8(ascii: "u"): escape = 2; unicode = 0
            default: emit(b)   // \" \\ \/
            }
            return
        }
        if escape >= 2 {
            guard let digit = ModelGate.hex(b) else { mode = .failed("bad \\u escape"); return }
            unicode = unicode << 4 | digit
            escape += 1
            if escape == 6 {
                escape = 0
                for u in String(UnicodeScalar(unicode).map(Character.init) ?? "\u{FFFD}").utf8 { emit(u) }
            }
            return
        }
        if b == UInt8(ascii: "\\") { escape = 1; return }
        if b == UInt8(ascii: "\"") {
            mode = .structure
            if readingModel {
                model = String(decoding: value, as: UTF8.self)
                afterModelKey = false
            }
            readingKey = false
            readingModel = false
            return
        }
        emit(b)
    }

    private mutating func emit(_ b: UInt8) {
        if readingKey {
            if key.count < ModelGate.maxKey { key.append(b) } else { keyOverflow = true }
        } else if readingModel {
            if value.count < ModelGate.maxModel { value.append(b) }
        }
    }

    private static func isModelKey(_ key: [UInt8]) -> Bool {
        let model = Array("model".utf8)
        return key.count == model.count && zip(key, model).allSatisfy { $0 | 0x20 == $1 }
    }

    private static func hex(_ b: UInt8) -> UInt32? {
        switch b {
        case 0x30...0x39: return UInt32(b - 0x30)
        case 0x41...0x46: return UInt32(b - 0x41 + 10)
        case 0x61...0x66: return UInt32(b - 0x61 + 10)
        default: return nil
        }
    }
}
