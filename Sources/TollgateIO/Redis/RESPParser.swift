/// A strict RESP2 reply parser: a pure value type over the caller's buffer, picohttpparser-shaped.
///
/// `parse` either returns one complete value and the bytes it used, asks for more bytes, or names what is wrong.
/// Anything malformed (unknown type byte, bare CR or LF, a line without CRLF, a length or integer that is not plain
/// decimal, sizes past the limits) is `.invalid`: the connection must then be closed, since nothing after it can be
/// trusted to line up with the pending commands. Stateless: after `.needMore`, call again from the same offset
/// with more bytes (replies are small; re-parsing a partial one is cheaper than keeping a resumable state).
public struct RESPParser: Sendable {
    /// The outcome of one `parse`.
    public enum Result: Sendable, Equatable {
        /// One value, and how many bytes from `offset` it took.
        case complete(RESPValue, consumed: Int)
        /// The value is not all there yet.
        case needMore
        /// Malformed or over a limit; close the connection.
        case invalid(String)
    }

    /// Largest bulk string accepted, in bytes.
    public var maxBulkLength: Int
    /// Most elements in one array.
    public var maxArrayCount: Int
    /// Deepest nesting of arrays (1 = an array of scalars).
    public var maxDepth: Int
    /// Longest simple string, error or number line, in bytes (without CRLF).
    public var maxLineLength: Int

    /// A parser with limits; the defaults suit replies to limiter scripts and small commands.
    public init(maxBulkLength: Int = 1 << 20, maxArrayCount: Int = 4096, maxDepth: Int = 8, maxLineLength: Int = 4096) {
        self.maxBulkLength = maxBulkLength
        self.maxArrayCount = maxArrayCount
        self.maxDepth = maxDepth
        self.maxLineLength = maxLineLength
    }

    private enum Failure: Error {
        case needMore
        case invalid(String)
    }

    /// Parses one value from `buffer[offset..<end]`.
    public func parse(_ buffer: [UInt8], from offset: Int = 0, to end: Int? = nil) -> Result {
        let limit = min(end ?? buffer.count, buffer.count)
        var i = offset
        do {
            let value = try value(buffer, &i, limit, depth: 0)
            return .complete(value, consumed: i - offset)
        } catch {
            switch error {
            case .needMore: return .needMore
            case .invalid(let reason): return .invalid(reason)
            }
        }
    }

    private func value(_ b: [UInt8], _ i: inout Int, _ end: Int, depth: Int) throws(Failure) -> RESPValue {
        guard i < end else { throw .needMore }
        let type = b[i]
        i += 1
        switch type {
        case UInt8(ascii: "+"):
            return .simpleString(try text(b, &i, end))
        case UInt8(ascii: "-"):
            return .error(try text(b, &i, end))
        case UInt8(ascii: ":"):
            return .integer(try number(b, &i, end, what: "integer"))
        case UInt8(ascii: "$"):
            let n = try number(b, &i, end, what: "bulk length")
            if n == -1 { return .bulkString(nil) }
            guard n >= 0 else { throw .invalid("negative bulk length") }
            guard n <= maxBulkLength else { throw .invalid("bulk string of \(n) bytes over the limit") }
            let count = Int(n)
            guard end - i >= count + 2 else {
                // Reject a missing CRLF as soon as it is visible rather than waiting for more.
                if end - i > count, b[i + count] != 0x0D { throw .invalid("bulk string not followed by CRLF") }
                throw .needMore
            }
            guard b[i + count] == 0x0D, b[i + count + 1] == 0x0A else { throw .invalid("bulk string not followed by CRLF") }
            let bytes = Array(b[i..<(i + count)])
            i += count + 2
            return .bulkString(bytes)
        case UInt8(ascii: "*"):
            let n = try number(b, &i, end, what: "array length")
            if n == -1 { return .array(nil) }
            guard n >= 0 else { throw .invalid("negative array length") }
            guard n <= maxArrayCount else { throw .invalid("array of \(n) elements over the limit") }
            guard depth < maxDepth else { throw .invalid("arrays nested deeper than \(maxDepth)") }
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(min(n, 64)))
            for _ in 0..<Int(n) {
                elements.append(try value(b, &i, end, depth: depth + 1))
            }
            return .array(elements)
        default:
            throw .invalid("unknown type byte \(type)")
        }
    }

    /// The end of the line starting at `i` (index of its CR); bare CR or LF inside is invalid.
    private func lineEnd(_ b: [UInt8], _ i: Int, _ end: Int) throws(Failure) -> Int {
        var j = i
        while j < end {
            let c = b[j]
            if c == 0x0D {
                guard j + 1 < end else { throw .needMore }
                guard b[j + 1] == 0x0A else { throw .invalid("CR not followed by LF") }
                return j
            }
            if c == 0x0A { throw .invalid("bare LF") }
            j += 1
            if j - i > maxLineLength { throw .invalid("line over \(maxLineLength) bytes") }
        }
        throw .needMore
    }

    private func text(_ b: [UInt8], _ i: inout Int, _ end: Int) throws(Failure) -> String {
        let e = try lineEnd(b, i, end)
        let s = String(decoding: b[i..<e], as: UTF8.self)
        i = e + 2
        return s
    }

    /// A decimal number: optional `-`, then 1 to 19 digits, no leading zeros (except `0` itself), no `+`, no `-0`.
    private func number(_ b: [UInt8], _ i: inout Int, _ end: Int, what: String) throws(Failure) -> Int64 {
        let e = try lineEnd(b, i, end)
        var j = i
        var negative = false
        if j < e && b[j] == UInt8(ascii: "-") { negative = true; j += 1 }
        let digits = e - j
        guard digits >= 1, digits <= 19 else { throw .invalid("\(what) is not a decimal number") }
        if digits > 1 && b[j] == UInt8(ascii: "0") { throw .invalid("\(what) has a leading zero") }
        var v: Int64 = 0
        while j < e {
            let c = b[j]
            guard c >= 0x30, c <= 0x39 else { throw .invalid("\(what) is not a decimal number") }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(c - 0x30))
            guard !o1, !o2 else { throw .invalid("\(what) overflows") }
            v = s
            j += 1
        }
        if negative && v == 0 { throw .invalid("\(what) is -0") }
        i = e + 2
        return negative ? -v : v
    }
}
