import TollgateHTTP
import TollgateIO

/// The small HTTPS client the ACME client talks through: one request per connection (`Connection: close`),
/// HTTP/1.1, bodies framed by Content-Length, chunked or the close. Blocking: only on the ACME thread, never on an
/// event loop.
struct ACMEHTTPClient: Sendable {
    /// One answer.
    struct Response: Sendable {
        /// The status code.
        var status: Int
        /// The header fields, names as sent.
        var headers: [(name: String, value: String)]
        /// The body, decoded from chunked framing when it was chunked.
        var body: [UInt8]

        /// The first value of the header `name` (case-insensitive).
        func header(_ name: String) -> String? {
            let lower = name.lowercased()
            return headers.first { $0.name.lowercased() == lower }?.value
        }

        /// Every value of the header `name` (case-insensitive), in order.
        func headerValues(_ name: String) -> [String] {
            let lower = name.lowercased()
            return headers.filter { $0.name.lowercased() == lower }.map(\.value)
        }
    }

    /// Answers larger than this are refused (a certificate chain is a few KiB).
    static let maxBytes = 1 << 20

    /// The TLS settings and trust of every connection.
    let tls: TLSClient
    /// The limit on connecting and on each send and receive.
    let timeoutMillis: Int32
    /// The limit on one whole answer, however it trickles in (each read alone is within `timeoutMillis`): a CA
    /// that sends a byte now and then cannot hold the ACME thread, and so a stop of the server, for long.
    var answerMillis: UInt64 = 90_000

    /// Sends `method` to `url` with `headers` and `body`; the answer, whatever its status.
    func send(_ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil)
        throws(SocketError) -> Response {
        guard let parsed = HTTPSURL(url) else { throw SocketError("not an https URL: \(url)") }
        let stream = try tls.connect(host: parsed.host, port: parsed.port, timeoutMillis: timeoutMillis)
        defer { stream.close() }
        var head = "\(method) \(parsed.target) HTTP/1.1\r\nHost: \(parsed.authority)\r\n"
        head += "User-Agent: tollgate/\(BuildInfo.version)\r\nAccept: */*\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try stream.write(Array(head.utf8) + (body ?? []))
        return try Self.readResponse(from: stream, requestWasHead: method == "HEAD",
                                     deadline: Syscall.monotonicNanos() + answerMillis * 1_000_000)
    }

    /// Reads one whole response from `stream`, by `deadline` (monotonic ns).
    static func readResponse(from stream: TLSClientStream, requestWasHead: Bool,
                             deadline: UInt64) throws(SocketError) -> Response {
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        var filled = 0
        var eof = false
        func fill() throws(SocketError) {
            guard Syscall.monotonicNanos() < deadline else { throw SocketError("the answer took too long to arrive") }
            if filled == buffer.count {
                guard buffer.count < maxBytes else { throw SocketError("answer larger than \(maxBytes) bytes") }
                buffer += [UInt8](repeating: 0, count: buffer.count)
            }
            let n = try stream.read(into: &buffer, at: filled, count: buffer.count - filled)
            if n == 0 { eof = true }
            filled += n
        }
        let parser = ResponseParser()
        var head = ResponseHead()
        while true {
            switch parser.parse(buffer, from: 0, to: filled, requestWasHead: requestWasHead, into: &head) {
            case .complete:
                break
            case .needMore:
                if eof { throw SocketError("connection closed before a whole answer head") }
                try fill()
                continue
            case .invalid(let error):
                throw SocketError("not an HTTP answer: \(error.reason)")
            }
            // 1xx interim answers are skipped.
            if head.status >= 100 && head.status < 200 {
                let used = head.headLength
                buffer.replaceSubrange(0..<used, with: [])
                buffer += [UInt8](repeating: 0, count: used)
                filled -= used
                continue
            }
            break
        }
        let headers = head.headers.map { field in
            (name: String(decoding: buffer[field.name], as: UTF8.self), value: String(decoding: buffer[field.value], as: UTF8.self))
        }
        var body: [UInt8] = []
        var position = head.headLength
        switch head.framing {
        case .none:
            break
        case .contentLength(let length):
            guard length <= maxBytes else { throw SocketError("answer larger than \(maxBytes) bytes") }
            while filled - position < length {
                if eof { throw SocketError("connection closed inside the answer's body") }
                try fill()
            }
            body = Array(buffer[position..<(position + length)])
        case .untilClose:
            while !eof { try fill() }
            body = Array(buffer[position..<filled])
        case .chunked:
            var decoder = ChunkedDecoder()
            while !decoder.isDone {
                if position == filled {
                    if eof { throw SocketError("connection closed inside the answer's chunked body") }
                    try fill()
                    continue
                }
                do {
                    let snapshot = buffer
                    position += try decoder.decode(snapshot, from: position, to: filled) { body += snapshot[$0] }
                } catch {
                    throw SocketError("bad chunked body: \(error.reason)")
                }
                if body.count > maxBytes { throw SocketError("answer larger than \(maxBytes) bytes") }
            }
        }
        return Response(status: head.status, headers: headers, body: body)
    }
}
