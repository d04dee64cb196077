extension ResponseParser {
    /// Decides the body framing and keep-alive of a response (RFC 9112 6.3), refusing an unusable Content-Length.
    static func interpretFields(_ buffer: [UInt8], requestWasHead: Bool, into head: inout ResponseHead) -> HTTPParseError? {
        var contentLength: Int?
        var lastCoding: Range<Int>?
        var sawTransferEncoding = false
        var sawClose = false
        var sawKeepAlive = false
        for field in head.headers {
            switch field.kind {
            case .contentLength:
                // Several fields or a list are fine if every element is the same number (RFC 9110 8.6).
                var invalid = field.value.isEmpty
                var elements = 0
                HTTPBytes.forEachListElement(buffer, field.value) { element in
                    elements += 1
                    guard let n = HTTPBytes.parseDecimal(buffer, element),
                          contentLength == nil || contentLength == n else {
                        invalid = true
                        return
                    }
                    contentLength = n
                }
                // A list of nothing but empty items (",") is no number at all (RFC 9112 6.3: 1*DIGIT).
                if invalid || elements == 0 { return HTTPParseError(status: 502, reason: "Upstream: invalid Content-Length") }
            case .transferEncoding:
                sawTransferEncoding = true
                HTTPBytes.forEachListElement(buffer, field.value) { lastCoding = $0 }
            case .connection:
                HTTPBytes.forEachListElement(buffer, field.value) { token in
                    if HTTPBytes.equalsLowercased(buffer, token, "close") { sawClose = true }
                    if HTTPBytes.equalsLowercased(buffer, token, "keep-alive") { sawKeepAlive = true }
                }
            default:
                break
            }
        }
        var keepAlive = !sawClose && (head.version == .http11 || sawKeepAlive)
        if requestWasHead || head.status < 200 || head.status == 204 || head.status == 304 {
            head.framing = .none
        } else if sawTransferEncoding {
            if let coding = lastCoding, HTTPBytes.equalsLowercased(buffer, coding, "chunked") {
                head.framing = .chunked
            } else {
                head.framing = .untilClose
            }
        } else if let n = contentLength {
            head.framing = .contentLength(n)
        } else {
            head.framing = .untilClose
        }
        // Content-Length beside Transfer-Encoding hints at smuggling: use the connection once (RFC 9112 6.3),
        // whether or not this response has a body.
        if sawTransferEncoding && contentLength != nil { keepAlive = false }
        if head.framing == .untilClose { keepAlive = false }
        head.keepAlive = keepAlive
        return nil
    }
}
