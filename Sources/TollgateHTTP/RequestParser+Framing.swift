extension RequestParser {
    /// Applies the header fields' meaning to `head`: body framing, Host, keep-alive and Expect, refusing every
    /// ambiguous combination (RFC 9112 6.1-6.3).
    static func interpretFields(_ buffer: [UInt8], into head: inout RequestHead) -> HTTPParseError? {
        var contentLength: Int?
        var transferEncoding: Range<Int>?
        var sawClose = false
        var sawKeepAlive = false
        for field in head.headers {
            switch field.kind {
            case .contentLength:
                guard contentLength == nil else { return HTTPParseError(status: 400, reason: "Multiple Content-Length") }
                guard let n = HTTPBytes.parseDecimal(buffer, field.value) else {
                    return HTTPParseError(status: 400, reason: "Invalid Content-Length")
                }
                contentLength = n
            case .transferEncoding:
                guard transferEncoding == nil else {
                    return HTTPParseError(status: 400, reason: "Multiple Transfer-Encoding")
                }
                transferEncoding = field.value
            case .host:
                guard head.host == nil else { return HTTPParseError(status: 400, reason: "Multiple Host") }
                guard isValidHost(buffer, field.value) else { return HTTPParseError(status: 400, reason: "Invalid Host") }
                head.host = field.value
            case .connection:
                HTTPBytes.forEachListElement(buffer, field.value) { token in
                    if HTTPBytes.equalsLowercased(buffer, token, "close") { sawClose = true }
                    if HTTPBytes.equalsLowercased(buffer, token, "keep-alive") { sawKeepAlive = true }
                }
            case .expect:
                if HTTPBytes.equalsLowercased(buffer, field.value, "100-continue") { head.expectContinue = true }
            default:
                break
            }
        }
        if let coding = transferEncoding {
            guard head.version == .http11 else {
                return HTTPParseError(status: 400, reason: "Transfer-Encoding in HTTP/1.0 request")
            }
            guard contentLength == nil else {
                return HTTPParseError(status: 400, reason: "Content-Length and Transfer-Encoding together")
            }
            guard HTTPBytes.equalsLowercased(buffer, coding, "chunked") else {
                return HTTPParseError(status: 501, reason: "Transfer-Encoding not implemented")
            }
            head.framing = .chunked
        } else if let n = contentLength {
            head.framing = .contentLength(n)
        }
        if head.version == .http11 && head.host == nil {
            return HTTPParseError(status: 400, reason: "Missing Host")
        }
        // A server must ignore 100-continue from an HTTP/1.0 client (RFC 9110 10.1.1).
        if head.version == .http10 { head.expectContinue = false }
        head.keepAlive = !sawClose && (head.version == .http11 || sawKeepAlive)
        return nil
    }

    /// A Host value must be non-empty and free of controls, SP, "/", "@" and non-ASCII bytes.
    static func isValidHost(_ buffer: [UInt8], _ value: Range<Int>) -> Bool {
        guard !value.isEmpty else { return false }
        for i in value {
            let b = buffer[i]
            if b <= ASCII.sp || b >= 0x7F || b == ASCII.slash || b == ASCII.at { return false }
        }
        return true
    }
}
