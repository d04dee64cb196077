extension BodyRewrite {
    /// One member of a JSON object: its key as Go decodes it (nil when longer than any field name it could match)
    /// and where its value lies in the body.
    struct Member {
        var key: [UInt8]?
        /// Where the key's opening quote is.
        var keyStart: Int
        var value: Range<Int>
    }

    /// The kinds of value the clamped fields distinguish.
    enum ValueKind {
        case object, array, string, number, trueLiteral, falseLiteral, null
    }

    /// Reads objects of a body with `BodyModel`'s Go-exact grammar and string decoding.
    struct Walker {
        var reader: BodyModel.Reader

        init(_ body: [UInt8]) {
            reader = BodyModel.Reader(body, key: [])
        }

        var bytes: [UInt8] { reader.b }

        /// Where the top-level value starts.
        mutating func firstNonSpace() -> Int {
            reader.i = 0
            reader.skipSpace()
            return reader.i
        }

        /// The members of the object whose `{` is at `start`, in order, each value validated.
        mutating func members(at start: Int) throws -> [Member] {
            let bad = Refusal(message: "the body is not a JSON object")
            guard start < bytes.count, bytes[start] == UInt8(ascii: "{") else { throw bad }
            reader.i = start + 1
            reader.skipSpace()
            var result: [Member] = []
            if reader.i < bytes.count, bytes[reader.i] == UInt8(ascii: "}") { return result }
            while true {
                reader.skipSpace()
                guard reader.i < bytes.count, bytes[reader.i] == UInt8(ascii: "\"") else { throw bad }
                let keyStart = reader.i
                // 64 bytes hold any spelling Go could fold to a field name of up to 21 letters.
                let key = try reader.string(keep: true, limit: 64)
                try reader.expect(UInt8(ascii: ":"))
                reader.skipSpace()
                let valueStart = reader.i
                try reader.value(depth: 1)
                result.append(Member(key: key, keyStart: keyStart, value: valueStart..<reader.i))
                reader.skipSpace()
                guard reader.i < bytes.count else { throw bad }
                if bytes[reader.i] == UInt8(ascii: ",") { reader.i += 1; continue }
                if bytes[reader.i] == UInt8(ascii: "}") { return result }
                throw bad
            }
        }

        /// Where each element of the array whose `[` is at `start` lies, in order, each value validated.
        mutating func elements(at start: Int) throws -> [Range<Int>] {
            let bad = Refusal(message: "the body is not valid JSON")
            guard start < bytes.count, bytes[start] == UInt8(ascii: "[") else { throw bad }
            reader.i = start + 1
            reader.skipSpace()
            var result: [Range<Int>] = []
            if reader.i < bytes.count, bytes[reader.i] == UInt8(ascii: "]") { return result }
            while true {
                reader.skipSpace()
                let valueStart = reader.i
                try reader.value(depth: 1)
                result.append(valueStart..<reader.i)
                reader.skipSpace()
                guard reader.i < bytes.count else { throw bad }
                if bytes[reader.i] == UInt8(ascii: ",") { reader.i += 1; continue }
                if bytes[reader.i] == UInt8(ascii: "]") { return result }
                throw bad
            }
        }

        /// Whether the array whose `[` is at `start` has no elements.
        mutating func arrayIsEmpty(at start: Int) throws -> Bool {
            reader.i = start + 1
            reader.skipSpace()
            return reader.i < bytes.count && bytes[reader.i] == UInt8(ascii: "]")
        }

        func kind(at i: Int) -> ValueKind {
            switch bytes[i] {
            case UInt8(ascii: "{"): return .object
            case UInt8(ascii: "["): return .array
            case UInt8(ascii: "\""): return .string
            case UInt8(ascii: "t"): return .trueLiteral
            case UInt8(ascii: "f"): return .falseLiteral
            case UInt8(ascii: "n"): return .null
            default: return .number
            }
        }

        func isNull(_ r: Range<Int>) -> Bool { kind(at: r.lowerBound) == .null }

        /// The value's JSON text as sent (for the log and `LoweredField.from`), shortened past 40 bytes.
        func text(_ r: Range<Int>) -> String {
            let end = min(r.upperBound, r.lowerBound + 40)
            return String(decoding: bytes[r.lowerBound..<end], as: UTF8.self) + (end < r.upperBound ? "…" : "")
        }

        /// A number as Go's `strconv.ParseFloat` reads it into float64; nil beyond its range (Go fails then).
        func double(_ r: Range<Int>) -> Double? {
            guard kind(at: r.lowerBound) == .number, let d = Double(String(decoding: bytes[r], as: UTF8.self)),
                  d.isFinite else { return nil }
            return d
        }

        /// A number as Go decodes it into an `int`: integer syntax (no fraction, no exponent) within 64 bits.
        func goInt(_ r: Range<Int>) -> Int? {
            guard kind(at: r.lowerBound) == .number else { return nil }
            for c in bytes[r] where c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                return nil
            }
            return Int(String(decoding: bytes[r], as: UTF8.self))
        }

        /// The string value starting at `i`, decoded as Go decodes it.
        mutating func decodedString(at i: Int) throws -> String {
            guard let decoded = try decodedString(at: i, limit: 256) else {
                throw Refusal(message: "a duration string is too long")
            }
            return decoded
        }

        /// The string value starting at `i`, decoded as Go decodes it; nil when it decodes to more than `limit`
        /// bytes.
        mutating func decodedString(at i: Int, limit: Int) throws -> String? {
            reader.i = i
            return try reader.string(keep: true, limit: limit).map { String(decoding: $0, as: UTF8.self) }
        }
    }
}

/// How Go's `encoding/json` matches an object key to a struct field name (lowercase ASCII letters and `_`).
///
/// Go 1.19–1.20 fold ASCII letters, `K` (U+212A, Kelvin) to `k` and `ſ` (U+017F, long s) to `s`; Go 1.21 and later
/// compare `ToUpper(ToLower(r))`, which also takes `ı` (U+0131) and `İ` (U+0130) to `I`. This matches the union, so
/// a key either reading could take for the field is found.
enum GoFold {
    static func matches(_ key: [UInt8], _ field: [UInt8]) -> Bool {
        var j = 0
        var scalars = String(decoding: key, as: UTF8.self).unicodeScalars.makeIterator()
        while let s = scalars.next() {
            guard j < field.count else { return false }
            let folded: UInt8
            switch s.value {
            case 0x41...0x5A: folded = UInt8(s.value) | 0x20
            case 0x00...0x7F: folded = UInt8(s.value)
            case 0x212A: folded = UInt8(ascii: "k")
            case 0x17F: folded = UInt8(ascii: "s")
            case 0x130, 0x131: folded = UInt8(ascii: "i")
            default: return false
            }
            guard folded == field[j] else { return false }
            j += 1
        }
        return j == field.count
    }
}

/// Go's `time.ParseDuration`, in seconds: `[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+` or `0`; nil where Go
/// returns an error (including a total past ±2^63 ns).
enum GoDuration {
    static func seconds(_ text: String) -> Double? {
        var s = Array(text.utf8)
        var negative = false
        if let first = s.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            s.removeFirst()
        }
        if s == [UInt8(ascii: "0")] { return 0 }
        guard !s.isEmpty else { return nil }
        var total = 0.0
        var i = 0
        while i < s.count {
            // A number: digits, optionally "." and digits; at least one digit in all.
            var digits = 0
            var value = 0.0
            while i < s.count, s[i] >= 0x30, s[i] <= 0x39 {
                value = value * 10 + Double(s[i] - 0x30)
                digits += 1
                i += 1
            }
            if i < s.count, s[i] == UInt8(ascii: ".") {
                i += 1
                var scale = 0.1
                while i < s.count, s[i] >= 0x30, s[i] <= 0x39 {
                    value += Double(s[i] - 0x30) * scale
                    scale /= 10
                    digits += 1
                    i += 1
                }
            }
            guard digits > 0 else { return nil }
            // A unit: the bytes up to the next digit or ".".
            let unitStart = i
            while i < s.count, !(s[i] >= 0x30 && s[i] <= 0x39), s[i] != UInt8(ascii: ".") { i += 1 }
            let unit = String(decoding: s[unitStart..<i], as: UTF8.self)
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs", "μs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: return nil
            }
            total += value * scale
            guard total * 1e9 < 9.223372036854775807e18 else { return nil }
        }
        return negative ? -total : total
    }
}
