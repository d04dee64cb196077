/// Byte helpers for the proxy: comparisons and list splitting on ranges of a buffer, without making Strings.
public enum HTTPBytes {
    /// Case-insensitive ASCII comparison of buffer[range] with a lowercase literal.
    public static func equalsLowercased(_ buffer: [UInt8], _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        literalCount(lowercase) == range.count && matches(buffer, at: range.lowerBound, lowercase, folding: true)
    }

    /// True when buffer[range] starts with the lowercase literal, ignoring ASCII case.
    public static func hasPrefixLowercased(_ buffer: [UInt8], _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        literalCount(lowercase) <= range.count && matches(buffer, at: range.lowerBound, lowercase, folding: true)
    }

    /// Exact (case-sensitive) comparison of buffer[range] with a literal.
    public static func equals(_ buffer: [UInt8], _ range: Range<Int>, _ literal: StaticString) -> Bool {
        literalCount(literal) == range.count && matches(buffer, at: range.lowerBound, literal, folding: false)
    }

    /// True when buffer[range] starts with the literal, case-sensitively.
    public static func hasPrefix(_ buffer: [UInt8], _ range: Range<Int>, _ literal: StaticString) -> Bool {
        literalCount(literal) <= range.count && matches(buffer, at: range.lowerBound, literal, folding: false)
    }

    /// Whether the literal's bytes are at `buffer[start...]`, with the buffer's bytes lowercased first when
    /// `folding`. The literal must fit in the buffer from `start` (the callers compared lengths with a range of
    /// it); a literal that does not is a programming error and traps, as subscripting would.
    @inline(__always)
    static func matches(_ buffer: [UInt8], at start: Int, _ literal: StaticString, folding: Bool) -> Bool {
        buffer.withUnsafeBufferPointer { matches($0, at: start, literal, folding: folding) }
    }

    /// The literal's length in bytes, whichever way it is stored (`utf8CodeUnitCount` traps on a literal kept as one
    /// Unicode scalar).
    @inline(__always)
    static func literalCount(_ literal: StaticString) -> Int {
        literal.hasPointerRepresentation ? literal.utf8CodeUnitCount : literal.withUTF8Buffer { $0.count }
    }

    /// `matches` on bytes already in hand.
    @inline(__always)
    static func matches(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int, _ literal: StaticString,
                        folding: Bool) -> Bool {
        let count = literalCount(literal)
        precondition(start >= 0 && count <= bytes.count &- start, "literal past the end of the buffer")
        guard literal.hasPointerRepresentation else {
            // A one-scalar literal: rare; compare through the standard library.
            return literal.withUTF8Buffer { expected in
                expected.indices.allSatisfy {
                    (folding ? ASCII.lower(bytes[start &+ $0]) : bytes[start &+ $0]) == expected[$0]
                }
            }
        }
        let expected = literal.utf8Start
        var k = 0
        while k < count {
            let b = bytes[start &+ k]
            if (folding ? ASCII.lower(b) : b) != expected[k] { return false }
            k &+= 1
        }
        return true
    }

    /// Splits a comma-separated header value into trimmed token ranges (for Connection, Transfer-Encoding).
    ///
    /// Empty elements (",,", leading or trailing commas) are skipped, as RFC 9110 5.6.1 asks of recipients.
    /// Allocates the result; the parser itself uses `forEachListElement`.
    public static func commaSeparated(_ buffer: [UInt8], _ range: Range<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        forEachListElement(buffer, range) { result.append($0) }
        return result
    }

    /// Calls `body` with every non-empty, OWS-trimmed element of the comma-separated list buffer[range].
    public static func forEachListElement(_ buffer: [UInt8], _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var i = range.lowerBound
        while i < range.upperBound {
            var elementEnd = i
            while elementEnd < range.upperBound && buffer[elementEnd] != ASCII.comma { elementEnd &+= 1 }
            let trimmed = trimOWS(buffer, i..<elementEnd)
            if !trimmed.isEmpty { body(trimmed) }
            i = elementEnd &+ 1
        }
    }

    /// buffer[range] without leading and trailing SP/HTAB.
    public static func trimOWS(_ buffer: [UInt8], _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper && ASCII.isOWS(buffer[lower]) { lower &+= 1 }
        while upper > lower && ASCII.isOWS(buffer[upper &- 1]) { upper &-= 1 }
        return lower..<upper
    }

    /// Parses buffer[range] as 1 to 18 ASCII digits; nil for anything else (sign, spaces, hex, empty, too long).
    public static func parseDecimal(_ buffer: [UInt8], _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for i in range {
            let b = buffer[i]
            guard ASCII.isDigit(b) else { return nil }
            value = value &* 10 &+ Int(b &- ASCII.zero)
        }
        return value
    }
}
