/// Strict HTTP/1.1 request-head parser: refuses anything a proxy could forward ambiguously (RFC 9112).
///
/// Stateless and allocation-free in steady state: header fields are ranges into the caller's buffer, stored in
/// the caller's reused `RequestHead`. Call `parse` again from the same `start` whenever more bytes arrive.
public struct RequestParser: Sendable {
    /// The size limits enforced on every head.
    public var limits: HTTPLimits

    /// Empty lines (CRLF) skipped before a request line; more is refused.
    static let maxLeadingEmptyLines = 8

    /// Creates a parser with the given limits.
    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
    }

    /// Parses one request head from buffer[start..<end] into `head` (which it resets first, keeping capacity).
    ///
    /// On `.complete`, `head.headLength` says where the body (or the next request) starts. On `.needMore`, call
    /// again with the same `start` once more bytes are buffered. On `.invalid`, answer the error's status and close.
    public func parse(_ buffer: [UInt8], from start: Int, to end: Int, into head: inout RequestHead) -> ParseResult {
        precondition(start >= 0 && start <= end && end <= buffer.count, "range outside the buffer")
        head.reset()
        let headLimit = limits.maxHeadBytes >= Int.max &- start ? Int.max : start &+ limits.maxHeadBytes
        let scanner = HeadScanner(buffer: buffer, end: end, headLimit: headLimit)

        let lineStart: Int
        switch scanner.skipEmptyLines(from: start, maxEmptyLines: Self.maxLeadingEmptyLines) {
        case .done(let i): lineStart = i
        case .needMore: return .needMore
        case .invalid(let error): return .invalid(error)
        }
        let lineEnd: Int
        switch scanner.findLineEnd(from: lineStart, maxLine: limits.maxRequestLine, longLineStatus: 414,
                                   allowTextBytes: false) {
        case .done(let cr): lineEnd = cr
        case .needMore: return .needMore
        case .invalid(let error): return .invalid(error)
        }
        // The line's bytes are known now; refuse a bad line before waiting for its LF and the fields.
        if let error = parseRequestLine(buffer, lineStart..<lineEnd, into: &head) { return .invalid(error) }
        let fieldsStart: Int
        switch scanner.expectLF(afterCR: lineEnd) {
        case .done(let i): fieldsStart = i
        case .needMore: return .needMore
        case .invalid(let error): return .invalid(error)
        }
        switch scanner.scanFields(from: fieldsStart, maxCount: limits.maxHeaderCount, into: &head.headers) {
        case .done(let headEnd): head.headLength = headEnd &- start
        case .needMore: return .needMore
        case .invalid(let error): return .invalid(error)
        }
        if let error = Self.interpretFields(buffer, into: &head) { return .invalid(error) }
        return .complete
    }

    /// Parses `method SP request-target SP HTTP-version` (the line without CRLF, bytes already known to be
    /// SP or VCHAR).
    func parseRequestLine(_ buffer: [UInt8], _ line: Range<Int>, into head: inout RequestHead) -> HTTPParseError? {
        var i = line.lowerBound
        while i < line.upperBound && ASCII.isTchar(buffer[i]) { i &+= 1 }
        guard i > line.lowerBound, i < line.upperBound, buffer[i] == ASCII.sp else {
            return HTTPParseError(status: 400, reason: "Malformed request line")
        }
        head.methodRange = line.lowerBound..<i
        head.method = HTTPMethod.recognize(buffer, head.methodRange)

        let targetStart = i &+ 1
        i = targetStart
        while i < line.upperBound && buffer[i] != ASCII.sp { i &+= 1 }
        guard i > targetStart, i < line.upperBound else {
            return HTTPParseError(status: 400, reason: "Malformed request line")
        }
        head.target = targetStart..<i

        switch Self.parseVersion(buffer, (i &+ 1)..<line.upperBound) {
        case .success(let version): head.version = version
        case .failure(let error): return error
        }
        guard let path = Self.parsePath(buffer, head.target, method: head.method) else {
            return HTTPParseError(status: 400, reason: "Invalid request target")
        }
        head.path = path
        return nil
    }

    /// Reads "HTTP/1.1" or "HTTP/1.0"; another "HTTP/d.d" is 505, anything else 400.
    static func parseVersion(_ buffer: [UInt8], _ range: Range<Int>) -> Result<HTTPVersion, HTTPParseError> {
        // The two versions as eight-byte words (byte k in bits 8k to 8k+7): one bounds-checked load and a compare,
        // where a request and a response each read one (its `unsafe` is about the type loaded).
        if range.count == 8 {
            let word = UInt64(littleEndian: buffer.span.bytes.unsafeLoadUnaligned(fromByteOffset: range.lowerBound,
                                                                                 as: UInt64.self))
            if word == 0x312e_312f_5054_5448 { return .success(.http11) } // HTTP/1.1
            if word == 0x302e_312f_5054_5448 { return .success(.http10) } // HTTP/1.0
        }
        if range.count == 8, HTTPBytes.hasPrefix(buffer, range, "HTTP/"),
           ASCII.isDigit(buffer[range.lowerBound &+ 5]), buffer[range.lowerBound &+ 6] == 0x2E,
           ASCII.isDigit(buffer[range.lowerBound &+ 7]) {
            return .failure(HTTPParseError(status: 505, reason: "HTTP version not supported"))
        }
        return .failure(HTTPParseError(status: 400, reason: "Malformed HTTP version"))
    }

    /// The path part of a request-target, or nil when the target is not origin-form, absolute-form http(s), or
    /// "*" with OPTIONS.
    static func parsePath(_ buffer: [UInt8], _ target: Range<Int>, method: HTTPMethod) -> Range<Int>? {
        let first = buffer[target.lowerBound]
        if first == ASCII.slash {
            return target.lowerBound..<firstIndex(of: ASCII.question, in: buffer, target)
        }
        if first == ASCII.star {
            return target.count == 1 && method == .options ? target : nil
        }
        let schemeLength: Int
        if HTTPBytes.hasPrefixLowercased(buffer, target, "http://") {
            schemeLength = 7
        } else if HTTPBytes.hasPrefixLowercased(buffer, target, "https://") {
            schemeLength = 8
        } else {
            return nil
        }
        let authorityStart = target.lowerBound &+ schemeLength
        var i = authorityStart
        while i < target.upperBound && buffer[i] != ASCII.slash && buffer[i] != ASCII.question {
            // Userinfo in a request-target is forbidden to senders (RFC 9110 4.2.4); refuse it outright.
            if buffer[i] == ASCII.at { return nil }
            i &+= 1
        }
        guard i > authorityStart else { return nil }
        if i < target.upperBound && buffer[i] == ASCII.slash {
            return i..<firstIndex(of: ASCII.question, in: buffer, i..<target.upperBound)
        }
        // No path: point at the second "/" of "://" so the range still reads "/".
        return (authorityStart &- 1)..<authorityStart
    }

    /// The index of the first `byte` in buffer[range], or `range.upperBound`.
    static func firstIndex(of byte: UInt8, in buffer: [UInt8], _ range: Range<Int>) -> Int {
        var i = range.lowerBound
        while i < range.upperBound && buffer[i] != byte { i &+= 1 }
        return i
    }
}
