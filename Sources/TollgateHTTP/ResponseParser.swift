/// HTTP/1.1 response-head parser for what the upstream sends back, with RFC 9112 6.3 body framing.
///
/// Field syntax is as strict as for requests. Every refusal carries status 502: the client gets a Bad Gateway and
/// the upstream connection must be closed. Stateless; call again from the same `start` when more bytes arrive.
public struct ResponseParser: Sendable {
    /// The size limits enforced on every head; `maxRequestLine` bounds the status line.
    public var limits: HTTPLimits

    /// Creates a parser; the defaults are roomier than for requests.
    public init(limits: HTTPLimits = HTTPLimits(maxRequestLine: 8192, maxHeaderCount: 200, maxHeadBytes: 65536)) {
        self.limits = limits
    }

    /// Parses one response head from buffer[start..<end] into `head` (which it resets first, keeping capacity).
    ///
    /// `requestWasHead` must say whether the request this answers was a HEAD: such responses have no body.
    public func parse(_ buffer: [UInt8], from start: Int, to end: Int, requestWasHead: Bool,
                      into head: inout ResponseHead) -> ParseResult {
        precondition(start >= 0 && start <= end && end <= buffer.count, "range outside the buffer")
        head.reset()
        let headLimit = limits.maxHeadBytes >= Int.max &- start ? Int.max : start &+ limits.maxHeadBytes
        let scanner = HeadScanner(buffer: buffer, end: end, headLimit: headLimit)

        let lineEnd: Int
        switch scanner.findLineEnd(from: start, maxLine: limits.maxRequestLine, longLineStatus: 502,
                                   allowTextBytes: true) {
        case .done(let cr): lineEnd = cr
        case .needMore: return .needMore
        case .invalid(let error): return Self.badGateway(error)
        }
        if let error = Self.parseStatusLine(buffer, start..<lineEnd, into: &head) { return .invalid(error) }
        let fieldsStart: Int
        switch scanner.expectLF(afterCR: lineEnd) {
        case .done(let i): fieldsStart = i
        case .needMore: return .needMore
        case .invalid(let error): return Self.badGateway(error)
        }
        switch scanner.scanFields(from: fieldsStart, maxCount: limits.maxHeaderCount, into: &head.headers) {
        case .done(let headEnd): head.headLength = headEnd &- start
        case .needMore: return .needMore
        case .invalid(let error): return Self.badGateway(error)
        }
        if let error = Self.interpretFields(buffer, requestWasHead: requestWasHead, into: &head) {
            return .invalid(error)
        }
        return .complete
    }

    /// The same refusal, as the 502 a client sees when its upstream misbehaves.
    static func badGateway(_ error: HTTPParseError) -> ParseResult {
        .invalid(HTTPParseError(status: 502, reason: "Upstream: " + error.reason))
    }

    /// Parses `HTTP/1.x SP 3DIGIT [SP reason]` (the line without CRLF).
    static func parseStatusLine(_ buffer: [UInt8], _ line: Range<Int>, into head: inout ResponseHead) -> HTTPParseError? {
        let bad = HTTPParseError(status: 502, reason: "Upstream: malformed status line")
        guard line.count >= 12 else { return bad }
        let s = line.lowerBound
        switch RequestParser.parseVersion(buffer, s..<(s &+ 8)) {
        case .success(let version): head.version = version
        case .failure: return HTTPParseError(status: 502, reason: "Upstream: unsupported HTTP version")
        }
        guard buffer[s &+ 8] == ASCII.sp else { return bad }
        var status = 0
        for i in (s &+ 9)..<(s &+ 12) {
            guard ASCII.isDigit(buffer[i]) else { return bad }
            status = status &* 10 &+ Int(buffer[i] &- ASCII.zero)
        }
        guard status >= 100 && status <= 599 else { return bad }
        head.status = status
        if line.count == 12 {
            head.reason = line.upperBound..<line.upperBound
        } else {
            guard buffer[s &+ 12] == ASCII.sp else { return bad }
            head.reason = (s &+ 13)..<line.upperBound
        }
        return nil
    }
}
