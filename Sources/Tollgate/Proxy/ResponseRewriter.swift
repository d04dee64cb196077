import TollgateHTTP

/// How the response body travels to the client.
public enum ResponseBodyMode: Sendable, Equatable {
    /// No body (HEAD, 204, 304).
    case none
    /// Content-Length bytes, forwarded as they are.
    case length(Int)
    /// The upstream's chunked bytes, forwarded byte for byte while a decoder tracks where they end, except the
    /// trailer section: its fields are dropped (`ChunkedDecoder.relay`).
    case chunkedPassthrough
    /// Chunked upstream, HTTP/1.0 client: the decoded data is sent and the connection closed at the end.
    case dechunkToClose
    /// Close-delimited upstream, HTTP/1.1 client: each read is sent as one chunk so the connection can be kept.
    case rechunk
    /// Close-delimited upstream and HTTP/1.0 client: bytes as they come, closed at the end.
    case untilClose
}

/// Writes the response head Tollgate sends the client from the upstream's.
public enum ResponseRewriter {
    /// Chooses how the body is relayed.
    public static func bodyMode(_ framing: BodyFraming, clientVersion: HTTPVersion) -> ResponseBodyMode {
        switch framing {
        case .none: return .none
        case .contentLength(let n): return .length(n)
        case .chunked: return clientVersion == .http11 ? .chunkedPassthrough : .dechunkToClose
        case .untilClose: return clientVersion == .http11 ? .rechunk : .untilClose
        }
    }

    /// The whole `Strict-Transport-Security` line for `value`, CRLF included: made once, copied into each head
    /// (the `hsts` of `write`).
    public static func hstsLine(_ value: String) -> [UInt8] {
        var line: [UInt8] = []
        HTTPWriter.appendHeader("Strict-Transport-Security", value, to: &line)
        return line
    }

    /// Appends the client-facing head: the upstream's status and end-to-end headers, our framing, the request id,
    /// and `Connection: close` when the connection ends after this response.
    public static func write(_ head: ResponseHead, buffer: [UInt8], mode: ResponseBodyMode, requestID: RequestID,
                             close: Bool, corsOrigin: String? = nil, corsCredentials: Bool = false, hsts: [UInt8]? = nil,
                             extraHeaders: [(String, String)] = [], into out: inout [UInt8]) {
        HTTPWriter.appendStatusLine(head.status, to: &out)
        for field in head.headers {
            switch field.kind {
            case .other where hsts != nil && field.name.count == 25
                && HTTPBytes.equalsLowercased(buffer, field.name, "strict-transport-security"):
                // Tollgate's own line below is the one: two would leave the browser to pick.
                continue
            case .other, .contentType, .origin, .referer, .xApiKey, .authorization, .expect, .host, .xForwardedFor,
                 .xForwardedProto, .cookie, .forwarding, .contentEncoding:
                HTTPWriter.appendField(field, from: buffer, to: &out)
            case .contentLength, .transferEncoding, .connection, .keepAlive, .proxyConnection, .proxyAuthorization,
                 .proxyOther, .te, .trailer, .upgrade, .xRequestId:
                continue
            }
        }
        switch mode {
        case .length(let n):
            HTTPWriter.appendRaw("Content-Length: ", to: &out)
            HTTPWriter.appendDecimal(n, to: &out)
            HTTPWriter.appendCRLF(to: &out)
        case .chunkedPassthrough, .rechunk:
            HTTPWriter.appendRaw("Transfer-Encoding: chunked\r\n", to: &out)
        case .none:
            // A HEAD answer (and a 304) keeps the length the upstream declared; a 1xx or 204 never has one
            // (RFC 9110 8.6: "A server MUST NOT send a Content-Length header field in any response with a status
            // code of 1xx or 204"), whatever the upstream wrote.
            let mayDeclareLength = head.status >= 200 && head.status != 204
            for field in head.headers where field.kind == .contentLength && mayDeclareLength {
                HTTPWriter.appendRaw("Content-Length: ", to: &out)
                out.append(contentsOf: buffer[field.value])
                HTTPWriter.appendCRLF(to: &out)
                break
            }
        case .dechunkToClose, .untilClose:
            break
        }
        HTTPWriter.appendRaw("X-Request-Id: ", to: &out)
        requestID.append(to: &out)
        HTTPWriter.appendCRLF(to: &out)
        if let hsts { out.append(contentsOf: hsts) }
        if let corsOrigin {
            HTTPWriter.appendHeader("Access-Control-Allow-Origin", corsOrigin, to: &out)
            HTTPWriter.appendHeader("Vary", "Origin", to: &out)
            if corsCredentials { HTTPWriter.appendHeader("Access-Control-Allow-Credentials", "true", to: &out) }
        }
        for (name, value) in extraHeaders { HTTPWriter.appendField(name, value, to: &out) }
        if close { HTTPWriter.appendRaw("Connection: close\r\n", to: &out) }
        HTTPWriter.appendCRLF(to: &out)
    }

    /// Whether the response is a server-sent event stream (`Content-Type: text/event-stream`).
    public static func isEventStream(_ head: ResponseHead, buffer: [UInt8]) -> Bool {
        for field in head.headers where field.kind == .contentType {
            let value = HTTPBytes.trimOWS(buffer, field.value)
            return HTTPBytes.hasPrefixLowercased(buffer, value, "text/event-stream")
        }
        return false
    }
}
