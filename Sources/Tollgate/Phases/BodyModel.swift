/// The model a complete JSON request body names, read every way Ollama reads it.
///
/// Ollama is Go and reads one body more than once:
/// - its handlers (and the OpenAI/Anthropic middlewares that rewrite `/v1/*` bodies) decode into structs with
///   `encoding/json`: top-level keys match the field name `model` ASCII-case-insensitively, escapes are decoded
///   first, the last match wins, `null` leaves the value as it was, any other non-string fails the request;
/// - the cloud middleware on `/v1/*` decodes into `map[string]json.RawMessage` and reads the exact key `model`
///   (last duplicate wins).
/// A request may pass only if every reading passes, so both are returned. Go validates the whole value before it
/// decodes; so does this reader, and it accepts only one JSON object with nothing but whitespace after it (Go's
/// stream decoder would ignore trailing bytes while `json.Unmarshal` refuses them: one more way two readings could
/// differ, so it is refused). Strings decode as Go decodes them: surrogate pairs combine, a lone surrogate and each
/// byte of invalid UTF-8 become U+FFFD.
///
/// Pure; reads the body once, allocates only for keys that may be `model` and for model values.
struct BodyModel: Equatable {
    /// What one reading saw.
    enum Reading: Equatable {
        /// No matching key (or only `null`s).
        case absent
        case string(String)
        /// A matching key with a number, boolean, object or array: Go fails to decode the request.
        case notString
    }

    /// The struct reading: what the handler acts on.
    var handler: Reading = .absent
    /// The exact-key map reading of the cloud middleware.
    var exactKey: Reading = .absent

    /// Every model name some reading of Ollama's would act on.
    var names: [String] {
        var result: [String] = []
        if case .string(let s) = handler { result.append(s) }
        if case .string(let s) = exactKey, !result.contains(s) { result.append(s) }
        return result
    }

    /// Go's `maxNestingDepth` is 10000; far fewer is refused here, which only makes Tollgate stricter.
    static let maxDepth = 512

    /// Reads `body` for `key` (a lowercase ASCII field name: `model`, or `name` which `/api/show` also reads);
    /// the reason when it is not exactly one valid JSON object.
    static func read(_ body: [UInt8], key: StaticString = "model") -> Result<BodyModel, Invalid> {
        var reader = Reader(body, key: key.withUTF8Buffer { Array($0) })
        return reader.run()
    }

    struct Invalid: Error, Equatable {
        var reason: String
    }

    /// Go's JSON grammar and string decoding over one body; `BodyRewrite` walks bodies with it too.
    struct Reader {
        let b: [UInt8]
        let key: [UInt8]
        var i = 0
        var result = BodyModel()

        init(_ body: [UInt8], key: [UInt8]) {
            b = body
            self.key = key
        }

        mutating func run() -> Result<BodyModel, Invalid> {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "{") else { return .failure(Invalid(reason: "the body is not a JSON object")) }
            do {
                try topObject()
                skipSpace()
                guard i == b.count else { throw Invalid(reason: "the body has bytes after its JSON object") }
            } catch let error as Invalid {
                return .failure(error)
            } catch {
                return .failure(Invalid(reason: "the body is not valid JSON"))
            }
            return .success(result)
        }

        mutating func skipSpace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        }

        mutating func expect(_ c: UInt8) throws(Invalid) {
            skipSpace()
            guard i < b.count, b[i] == c else { throw Invalid(reason: "the body is not valid JSON") }
            i += 1
        }

        /// The top-level object: keys are decoded and matched; values are validated (and read when a key matches).
        mutating func topObject() throws(Invalid) {
            i += 1  // "{"
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return }
            while true {
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw Invalid(reason: "the body is not valid JSON") }
                let name = try string(keep: true, limit: 16)
                try expect(UInt8(ascii: ":"))
                skipSpace()
                let foldMatch = name.map(isFolded) ?? false
                let exactMatch = name.map { $0 == self.key } ?? false
                if foldMatch || exactMatch {
                    let reading = try modelValue()
                    // null leaves a struct field unchanged; in the map it is stored (and then reads as no model).
                    if foldMatch, reading != .absent { result.handler = reading }
                    if exactMatch { result.exactKey = reading }
                } else {
                    try value(depth: 1)
                }
                skipSpace()
                guard i < b.count else { throw Invalid(reason: "the body is not a complete JSON object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return }
                throw Invalid(reason: "the body is not valid JSON")
            }
        }

        /// A `model` value: a string, null (absent), or anything else (validated, then `.notString`).
        mutating func modelValue() throws(Invalid) -> Reading {
            guard i < b.count else { throw Invalid(reason: "the body is not a complete JSON object") }
            if b[i] == UInt8(ascii: "\"") {
                let bytes = try string(keep: true, limit: Int.max) ?? []
                return .string(String(decoding: bytes, as: UTF8.self))
            }
            if b.count - i >= 4, b[i] == UInt8(ascii: "n"), b[i + 1] == UInt8(ascii: "u"), b[i + 2] == UInt8(ascii: "l"),
               b[i + 3] == UInt8(ascii: "l") {
                i += 4
                return .absent
            }
            try value(depth: 1)
            return .notString
        }

        /// Validates one value (Go's scanner grammar). Iterative over nesting, so deep input cannot overflow the stack.
        mutating func value(depth startDepth: Int) throws(Invalid) {
            // Each open container: true for an object (expects "key": value pairs), false for an array.
            var stack: [Bool] = []
            while true {
                skipSpace()
                guard i < b.count else { throw Invalid(reason: "the body is not a complete JSON object") }
                let c = b[i]
                var closedScalar = true
                switch c {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    guard startDepth + stack.count < BodyModel.maxDepth else { throw Invalid(reason: "the body nests too deeply") }
                    let isObject = c == UInt8(ascii: "{")
                    i += 1
                    skipSpace()
                    if i < b.count, b[i] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                        i += 1
                    } else {
                        stack.append(isObject)
                        if isObject { try objectKey() }
                        closedScalar = false
                    }
                case UInt8(ascii: "\""):
                    _ = try string(keep: false, limit: 0)
                case UInt8(ascii: "t"): try literal("true")
                case UInt8(ascii: "f"): try literal("false")
                case UInt8(ascii: "n"): try literal("null")
                default: try number()
                }
                guard closedScalar else { continue }
                // After a complete value: close containers or move to the next element.
                while let top = stack.last {
                    skipSpace()
                    guard i < b.count else { throw Invalid(reason: "the body is not a complete JSON object") }
                    if b[i] == UInt8(ascii: ",") {
                        i += 1
                        if top { try objectKey() }
                        break
                    }
                    guard b[i] == (top ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { throw Invalid(reason: "the body is not valid JSON") }
                    i += 1
                    stack.removeLast()
                }
                if stack.isEmpty { return }
            }
        }

        /// `"key":` inside a nested object.
        mutating func objectKey() throws(Invalid) {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw Invalid(reason: "the body is not valid JSON") }
            _ = try string(keep: false, limit: 0)
            try expect(UInt8(ascii: ":"))
        }

        mutating func literal(_ word: StaticString) throws(Invalid) {
            let n = word.utf8CodeUnitCount
            guard b.count - i >= n else { throw Invalid(reason: "the body is not a complete JSON object") }
            for k in 0..<n where b[i + k] != word.utf8Start[k] { throw Invalid(reason: "the body is not valid JSON") }
            i += n
        }

        /// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
        mutating func number() throws(Invalid) {
            let bad = Invalid(reason: "the body is not valid JSON")
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count, isDigit(b[i]) else { throw bad }
            if b[i] == UInt8(ascii: "0") { i += 1 } else { while i < b.count, isDigit(b[i]) { i += 1 } }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                guard i < b.count, isDigit(b[i]) else { throw bad }
                while i < b.count, isDigit(b[i]) { i += 1 }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                guard i < b.count, isDigit(b[i]) else { throw bad }
                while i < b.count, isDigit(b[i]) { i += 1 }
            }
        }

        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

        /// A string starting at the opening quote. With `keep`, returns its decoded bytes as Go decodes them, or nil
        /// once they pass `limit` (still validated to the end).
        mutating func string(keep: Bool, limit: Int) throws(Invalid) -> [UInt8]? {
            let bad = Invalid(reason: "the body is not valid JSON")
            i += 1
            var out: [UInt8]? = keep ? [] : nil
            func put(_ bytes: some Sequence<UInt8>, _ out: inout [UInt8]?) {
                guard out != nil else { return }
                out!.append(contentsOf: bytes)
                if out!.count > limit { out = nil }
            }
            while true {
                guard i < b.count else { throw Invalid(reason: "the body is not a complete JSON object") }
                let c = b[i]
                if c == UInt8(ascii: "\"") { i += 1; break }
                if c < 0x20 { throw bad }
                if c == UInt8(ascii: "\\") {
                    guard i + 1 < b.count else { throw Invalid(reason: "the body is not a complete JSON object") }
                    let e = b[i + 1]
                    i += 2
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): put(CollectionOfOne(e), &out)
                    case UInt8(ascii: "b"): put(CollectionOfOne(0x08), &out)
                    case UInt8(ascii: "f"): put(CollectionOfOne(0x0C), &out)
                    case UInt8(ascii: "n"): put(CollectionOfOne(0x0A), &out)
                    case UInt8(ascii: "r"): put(CollectionOfOne(0x0D), &out)
                    case UInt8(ascii: "t"): put(CollectionOfOne(0x09), &out)
                    case UInt8(ascii: "u"):
                        guard let first = hex4(at: i) else { throw bad }
                        i += 4
                        var scalar = first
                        if first >= 0xD800 && first < 0xE000 {
                            // Go: a high surrogate followed by \u and a low surrogate is one rune; otherwise U+FFFD
                            // and the next escape is read on its own.
                            if first < 0xDC00, i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u"),
                               let second = hex4(at: i + 2), second >= 0xDC00 && second < 0xE000 {
                                scalar = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                                i += 6
                            } else {
                                scalar = 0xFFFD
                            }
                        }
                        put(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8, &out)
                    default:
                        throw bad
                    }
                    continue
                }
                if c < 0x80 {
                    put(CollectionOfOne(c), &out)
                    i += 1
                    continue
                }
                let n = utf8Length(at: i)
                if n == 0 {
                    put("\u{FFFD}".utf8, &out)
                    i += 1
                } else {
                    put(b[i..<i + n], &out)
                    i += n
                }
            }
            return out
        }

        func hex4(at k: Int) -> UInt32? {
            guard k + 4 <= b.count else { return nil }
            var v: UInt32 = 0
            for j in k..<k + 4 {
                let c = b[j]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: return nil
                }
                v = v << 4 | d
            }
            return v
        }

        /// The length of a valid UTF-8 sequence at k as Go's `utf8.DecodeRune` accepts it (no overlongs, no
        /// surrogates, nothing past U+10FFFF), or 0 when Go would decode RuneError of size 1.
        func utf8Length(at k: Int) -> Int {
            let c = b[k]
            let n: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: n = 2
            case 0xE0: n = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: n = 3
            case 0xED: n = 3; hi = 0x9F
            case 0xF0: n = 4; lo = 0x90
            case 0xF1...0xF3: n = 4
            case 0xF4: n = 4; hi = 0x8F
            default: return 0
            }
            guard k + n <= b.count else { return 0 }
            guard b[k + 1] >= lo && b[k + 1] <= hi else { return 0 }
            for j in (k + 2)..<(k + n) where b[j] < 0x80 || b[j] > 0xBF { return 0 }
            return n
        }

        /// Go's `encoding/json` field match for a name of ASCII letters without `k` or `s`: ASCII case folding.
        func isFolded(_ candidate: [UInt8]) -> Bool {
            candidate.count == key.count && zip(candidate, key).allSatisfy { $0 | 0x20 == $1 && ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A }
        }
    }
}
