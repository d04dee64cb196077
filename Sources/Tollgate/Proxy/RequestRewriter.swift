import TollgateHTTP

/// Writes the request head Tollgate sends upstream: exactly one well-formed HTTP/1.1 request.
///
/// Host becomes the upstream's; hop-by-hop headers, credentials (`Authorization`, `x-api-key`, `Proxy-*`, `Cookie`),
/// `Origin` and `Referer`, and any client-sent forwarding headers (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`) are
/// dropped; `X-Forwarded-For`,
/// `X-Forwarded-Proto` and `X-Request-Id` are set; framing is re-declared from what the parser validated.
public enum RequestRewriter {
    /// What every request from one client on one connection sends alike, written once (a connection keeps them):
    /// each bulk copy into the head costs about as much as a hundred bytes copied, so fewer, longer ones.
    public struct Parts: Sendable {
        /// The request line's end and the Host line: ` HTTP/1.1\r\nHost: <upstream>\r\n`.
        public let lineEnd: [UInt8]
        /// `X-Forwarded-For: <client>\r\nX-Forwarded-Proto: <scheme>\r\nX-Request-Id: ` (the id follows).
        public let forwarding: [UInt8]

        public init(upstreamHost: [UInt8], clientAddress: [UInt8], scheme: StaticString) {
            var lineEnd: [UInt8] = []
            HTTPWriter.appendRaw(" HTTP/1.1\r\nHost: ", to: &lineEnd)
            lineEnd.append(contentsOf: upstreamHost)
            HTTPWriter.appendCRLF(to: &lineEnd)
            self.lineEnd = lineEnd
            var forwarding: [UInt8] = []
            HTTPWriter.appendRaw("X-Forwarded-For: ", to: &forwarding)
            forwarding.append(contentsOf: clientAddress)
            HTTPWriter.appendRaw("\r\nX-Forwarded-Proto: ", to: &forwarding)
            HTTPWriter.appendRaw(scheme, to: &forwarding)
            HTTPWriter.appendRaw("\r\nX-Request-Id: ", to: &forwarding)
            self.forwarding = forwarding
        }
    }

    /// Appends the upstream head to `out`. `target`: the origin-form target to send instead of the one received
    /// (`RequestTarget.Canonical.rewritten`); nil sends the received one, which must then be origin-form.
    public static func write(_ head: RequestHead, buffer: [UInt8], target: [UInt8]? = nil, parts: Parts,
                             requestID: RequestID, into out: inout [UInt8]) {
        out.append(contentsOf: buffer[head.methodRange])
        out.append(0x20)
        if let target {
            out.append(contentsOf: target)
        } else {
            out.append(contentsOf: buffer[head.target])
        }
        out.append(contentsOf: parts.lineEnd)

        let nominated = connectionNominated(head, buffer)
        for field in head.headers {
            switch field.kind {
            case .other, .contentType, .contentEncoding:
                if !nominated.isEmpty && nominated.contains(where: { equalNames(buffer, $0, field.name) }) { continue }
                HTTPWriter.appendField(field, from: buffer, to: &out)
            default:
                continue
            }
        }
        out.append(contentsOf: parts.forwarding)
        requestID.append(to: &out)
        HTTPWriter.appendCRLF(to: &out)
        switch head.framing {
        case .contentLength(let n):
            HTTPWriter.appendRaw("Content-Length: ", to: &out)
            HTTPWriter.appendDecimal(n, to: &out)
            HTTPWriter.appendCRLF(to: &out)
        case .chunked:
            HTTPWriter.appendRaw("Transfer-Encoding: chunked\r\n", to: &out)
        case .none, .untilClose:
            break
        }
        HTTPWriter.appendCRLF(to: &out)
    }

    /// Header names listed in `Connection` (other than close/keep-alive): hop-by-hop by declaration.
    static func connectionNominated(_ head: RequestHead, _ buffer: [UInt8]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        for field in head.headers where field.kind == .connection {
            for token in HTTPBytes.commaSeparated(buffer, field.value) {
                if HTTPBytes.equalsLowercased(buffer, token, "close") || HTTPBytes.equalsLowercased(buffer, token, "keep-alive") { continue }
                result.append(token)
            }
        }
        return result
    }

    static func equalNames(_ buffer: [UInt8], _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        var i = a.lowerBound, j = b.lowerBound
        while i < a.upperBound {
            if buffer[i] | 0x20 != buffer[j] | 0x20 { return false }
            i += 1; j += 1
        }
        return true
    }

    /// Re-declares the framing of a head written by `write` (its last field) as `Content-Length: contentLength`:
    /// the request's body was rewritten whole (`BodyRewrite`).
    static func replaceFraming(_ head: inout [UInt8], contentLength: Int) {
        // The head ends "...\r\n<last field>\r\n\r\n"; `write` puts the framing field last, when there is one.
        var end = head.count - 2
        var lineStart = end - 2
        while lineStart >= 2 && !(head[lineStart - 2] == 0x0D && head[lineStart - 1] == 0x0A) { lineStart -= 1 }
        let line = head[lineStart..<end]
        if line.starts(with: "Content-Length: ".utf8) || line.starts(with: "Transfer-Encoding: chunked".utf8) {
            end = lineStart
        }
        head.removeSubrange(end...)
        HTTPWriter.appendRaw("Content-Length: ", to: &head)
        HTTPWriter.appendDecimal(contentLength, to: &head)
        HTTPWriter.appendRaw("\r\n\r\n", to: &head)
    }

    /// Appends `head` (written by `write`) to `out` with its Host value replaced by `host`: the same request for
    /// another backend. Host is always the first field after the request line.
    static func appendReplacingHost(_ head: [UInt8], host: [UInt8], to out: inout [UInt8]) {
        var lineEnd = 0
        while lineEnd + 1 < head.count && !(head[lineEnd] == 0x0D && head[lineEnd + 1] == 0x0A) { lineEnd += 1 }
        let valueStart = lineEnd + 2 + 6  // CRLF "Host: "
        var valueEnd = valueStart
        while valueEnd + 1 < head.count && !(head[valueEnd] == 0x0D && head[valueEnd + 1] == 0x0A) { valueEnd += 1 }
        guard valueStart <= valueEnd, valueEnd < head.count else {
            out.append(contentsOf: head)
            return
        }
        out.append(contentsOf: head[..<valueStart])
        out.append(contentsOf: host)
        out.append(contentsOf: head[valueEnd...])
    }
}
