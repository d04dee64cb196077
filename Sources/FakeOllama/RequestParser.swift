/// One header field as byte ranges into the connection's input buffer.
struct HeaderField {
    var name: Range<Int>
    var value: Range<Int>
}

/// A parsed request head: ranges into the buffer it was parsed from, valid until that buffer is compacted.
struct RequestHead {
    var method: Range<Int> = 0..<0
    var target: Range<Int> = 0..<0
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    var minorVersion = 1
    /// Reused between requests so parsing allocates nothing once warm.
    var fields: [HeaderField] = []
}

/// Why a request was refused before routing, with the status Go's net/http would answer.
enum RequestError: Error, Equatable {
    case badRequest(String)
    case headerTooLarge
    case unsupportedTransferEncoding
    case bodyTooLarge

    var status: Int {
        switch self {
        case .badRequest: return 400
        case .headerTooLarge: return 431
        case .unsupportedTransferEncoding: return 501
        case .bodyTooLarge: return 413
        }
    }

    /// The plain-text body, shaped like Go's ("400 Bad Request: missing required Host header").
    var body: String {
        switch self {
        case .badRequest(let why): return why.isEmpty ? "400 Bad Request" : "400 Bad Request: \(why)"
        case .headerTooLarge: return "431 Request Header Fields Too Large"
        case .unsupportedTransferEncoding: return "501 Not Implemented: unsupported transfer encoding"
        case .bodyTooLarge: return "413 Request Entity Too Large"
        }
    }
}

/// Outcome of parsing a request head.
enum HeadParseResult: Equatable {
    case complete(consumed: Int)
    case needMore
    case invalid(RequestError)
}

/// A picohttpparser-shaped HTTP/1.1 request-head parser: no allocation, ranges into the caller's buffer.
enum RequestParser {
    /// Parses the head at the start of `buf[start..<end]`; the ranges in `head` index `buf` itself.
    static func parseHead(_ buf: [UInt8], start: Int, end n: Int, into head: inout RequestHead,
                          maxHeadBytes: Int) -> HeadParseResult {
        precondition(0 <= start && start <= n && n <= buf.count)
        let base = start
        var i = start
        // RFC 9112 2.2: ignore at least one empty line before the request line.
        while i < n && (buf[i] == 13 || buf[i] == 10) { i += 1 }
        // Find the end of the head first, so partial heads cost one scan.
        var end = -1
        var j = i
        while j + 1 < n {
            if buf[j] == 10 {
                if buf[j + 1] == 10 { end = j + 2; break }
                if buf[j + 1] == 13 && j + 2 < n && buf[j + 2] == 10 { end = j + 3; break }
            }
            j += 1
        }
        if end < 0 {
            return n - i > maxHeadBytes ? .invalid(.headerTooLarge) : .needMore
        }
        if end - i > maxHeadBytes { return .invalid(.headerTooLarge) }

        // Request line: method SP target SP HTTP/1.x CRLF
        let methodStart = i
        while i < end && isTokenChar(buf[i]) { i += 1 }
        guard i > methodStart, i < end, buf[i] == 32 else { return .invalid(.badRequest("malformed request line")) }
        head.method = methodStart..<i
        i += 1
        let targetStart = i
        while i < end && buf[i] > 32 && buf[i] != 127 { i += 1 }
        guard i > targetStart, i < end, buf[i] == 32 else { return .invalid(.badRequest("malformed request line")) }
        head.target = targetStart..<i
        i += 1
        guard i + 8 <= end, buf[i] == 72, buf[i + 1] == 84, buf[i + 2] == 84, buf[i + 3] == 80, buf[i + 4] == 47,
              buf[i + 5] == 49, buf[i + 6] == 46, buf[i + 7] == 48 || buf[i + 7] == 49
        else { return .invalid(.badRequest("malformed HTTP version")) }
        head.minorVersion = Int(buf[i + 7] - 48)
        i += 8
        guard let afterLine = lineEnd(buf, i, end) else { return .invalid(.badRequest("malformed request line")) }
        i = afterLine

        head.fields.removeAll(keepingCapacity: true)
        while i < end {
            if buf[i] == 13 || buf[i] == 10 { break }  // the empty line
            if buf[i] == 32 || buf[i] == 9 { return .invalid(.badRequest("obsolete line folding")) }
            let nameStart = i
            while i < end && isTokenChar(buf[i]) { i += 1 }
            guard i > nameStart, i < end, buf[i] == 58 else { return .invalid(.badRequest("malformed MIME header line")) }
            let nameEnd = i
            i += 1
            while i < end && (buf[i] == 32 || buf[i] == 9) { i += 1 }
            let valueStart = i
            while i < end && buf[i] != 13 && buf[i] != 10 {
                if buf[i] == 0 { return .invalid(.badRequest("invalid header value")) }
                i += 1
            }
            var valueEnd = i
            while valueEnd > valueStart && (buf[valueEnd - 1] == 32 || buf[valueEnd - 1] == 9) { valueEnd -= 1 }
            guard let next = lineEnd(buf, i, end) else { return .invalid(.badRequest("invalid header value")) }
            i = next
            head.fields.append(HeaderField(name: nameStart..<nameEnd, value: valueStart..<valueEnd))
        }
        return .complete(consumed: end - base)
    }

    /// Index after the CRLF (or bare LF) at `i`; nil if something else (a bare CR) is there.
    private static func lineEnd(_ buf: [UInt8], _ i: Int, _ end: Int) -> Int? {
        if i < end && buf[i] == 10 { return i + 1 }
        if i + 1 < end && buf[i] == 13 && buf[i + 1] == 10 { return i + 2 }
        return nil
    }

    /// RFC 9110 tchar.
    @inline(__always)
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

/// An incremental decoder for `Transfer-Encoding: chunked` request bodies (strict CRLF, like Go's).
struct ChunkedDecoder {
    private enum State { case size, ext, sizeLF, data, dataCR, dataLF, trailerStart, trailerLine, trailerLF, finalLF, done }
    private var state = State.size
    private var size = 0
    private var sawDigit = false

    /// Whether the terminating zero chunk and trailer section have been consumed.
    var isDone: Bool { state == .done }

    /// Consumes bytes from `buf[start..<end]`, appending decoded data to `body`; returns bytes consumed or an error.
    mutating func feed(_ buf: [UInt8], start: Int, end: Int, into body: inout [UInt8]) -> Result<Int, RequestError> {
        precondition(0 <= start && start <= end && end <= buf.count)
        var i = start
        let bad = RequestError.badRequest("malformed chunked encoding")
        while i < end && state != .done {
            let c = buf[i]
            switch state {
            case .size:
                if let d = hexValue(c) {
                    guard size < (1 << 40) else { return .failure(bad) }
                    size = size * 16 + d
                    sawDigit = true
                } else if c == UInt8(ascii: ";") && sawDigit {
                    state = .ext
                } else if c == 13 && sawDigit {
                    state = .sizeLF
                } else {
                    return .failure(bad)
                }
                i += 1
            case .ext:
                if c == 13 { state = .sizeLF } else if c == 10 { return .failure(bad) }
                i += 1
            case .sizeLF:
                guard c == 10 else { return .failure(bad) }
                state = size == 0 ? .trailerStart : .data
                i += 1
            case .data:
                let take = min(size, end - i)
                body.append(contentsOf: buf[i..<(i + take)])
                size -= take
                i += take
                if size == 0 { state = .dataCR }
            case .dataCR:
                guard c == 13 else { return .failure(bad) }
                state = .dataLF
                i += 1
            case .dataLF:
                guard c == 10 else { return .failure(bad) }
                state = .size
                sawDigit = false
                i += 1
            case .trailerStart:
                state = c == 13 ? .finalLF : .trailerLine
                i += 1
            case .trailerLine:
                if c == 13 { state = .trailerLF }
                i += 1
            case .trailerLF:
                guard c == 10 else { return .failure(bad) }
                state = .trailerStart
                i += 1
            case .finalLF:
                guard c == 10 else { return .failure(bad) }
                state = .done
                i += 1
            case .done:
                break
            }
        }
        return .success(i - start)
    }

    private func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}
