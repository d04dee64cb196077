/// Byte helpers for the proxy: comparisons and list splitting on ranges of a buffer, without making Strings.
public enum HTTPBytes {
    /// Case-insensitive ASCII comparison of buffer[range] with a lowercase literal.
    public static func equalsLowercased(_ buffer: [UInt8], _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        matches(buffer.span, range, lowercase, folding: true, prefix: false)
    }

    /// True when buffer[range] starts with the lowercase literal, ignoring ASCII case.
    public static func hasPrefixLowercased(_ buffer: [UInt8], _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        matches(buffer.span, range, lowercase, folding: true, prefix: true)
    }

    /// Exact (case-sensitive) comparison of buffer[range] with a literal.
    public static func equals(_ buffer: [UInt8], _ range: Range<Int>, _ literal: StaticString) -> Bool {
        matches(buffer.span, range, literal, folding: false, prefix: false)
    }

    /// True when buffer[range] starts with the literal, case-sensitively.
    public static func hasPrefix(_ buffer: [UInt8], _ range: Range<Int>, _ literal: StaticString) -> Bool {
        matches(buffer.span, range, literal, folding: false, prefix: true)
    }

    /// Whether `bytes[range]` is the literal (or, with `prefix`, starts with it), with the bytes lowercased first
    /// when `folding`. One loop inside one `withUTF8Buffer`, the bytes read through a span: no closure per byte and
    /// no copy of the buffer; a range outside the bytes traps, as subscripting does.
    @inline(__always)
    static func matches(_ bytes: borrowing Span<UInt8>, _ range: Range<Int>, _ literal: StaticString, folding: Bool,
                        prefix: Bool) -> Bool {
        literal.withUTF8Buffer { expected in
            guard prefix ? expected.count <= range.count : expected.count == range.count else { return false }
            let start = range.lowerBound
            var k = 0
            while k < expected.count {
                let b = bytes[start &+ k]
                if (folding ? ASCII.lower(b) : b) != expected[k] { return false }
                k &+= 1
            }
            return true
        }
    }

    /// Whether `headers` declare a Content-Encoding other than `identity` (a request's or a response's).
    public static func declaresEncoding(_ headers: [HeaderField], _ buffer: [UInt8]) -> Bool {
        headers.contains { field in
            field.kind == .contentEncoding && !equalsLowercased(buffer, trimOWS(buffer, field.value), "identity")
        }
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
