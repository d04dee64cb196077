/// A response head as the client received it.
struct ResponseHead {
    var status: Int
    /// Header fields in wire order, names as sent.
    var headers: [(name: String, value: String)]
    /// The head's bytes exactly as received, final CRLF CRLF included.
    var raw: [UInt8]

    /// The first value of `name` (case-insensitive).
    func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    /// How many fields are named `name`.
    func count(_ name: String) -> Int { headers.filter { $0.name.lowercased() == name.lowercased() }.count }

    /// Whether the body is chunked.
    var isChunked: Bool { header("Transfer-Encoding")?.lowercased() == "chunked" }
}

/// A whole response.
struct Response {
    var head: ResponseHead
    /// The body, de-chunked.
    var body: [UInt8]
    /// The body bytes as they crossed the wire (chunk framing included).
    var rawBody: [UInt8]

    /// The status code.
    var status: Int { head.status }
    /// The body as UTF-8 text.
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A tiny blocking HTTP/1.1 client over a `ByteStream`: write raw bytes, read heads, bodies, chunks and lines.
/// Every read is bounded by the stream's socket timeout.
final class HTTPClient {
    let stream: any ByteStream
    /// Received bytes not yet consumed.
    private(set) var buffered: [UInt8] = []
    /// Decoded chunk data not yet returned by `readLine`.
    private var lineData: [UInt8] = []

    /// Wraps a connected stream; the client closes it in `close`.
    init(_ stream: any ByteStream) { self.stream = stream }

    /// Sends a string's UTF-8 bytes as they are.
    func send(_ text: String) throws { try stream.write(Array(text.utf8)) }

    /// Sends raw bytes.
    func send(_ bytes: [UInt8]) throws { try stream.write(bytes) }

    /// Closes the connection.
    func close() { stream.close() }

    /// Reads more into the buffer; false at EOF.
    private func fill() throws -> Bool {
        let more = try stream.readSome(max: 64 * 1024)
        buffered += more
        return !more.isEmpty
    }

    /// Takes the next `count` bytes, reading as needed; throws at EOF.
    func take(_ count: Int) throws -> [UInt8] {
        while buffered.count < count {
            guard try fill() else { throw WireError("EOF after \(buffered.count) of \(count) bytes") }
        }
        defer { buffered.removeFirst(count) }
        return Array(buffered[0..<count])
    }

    /// Takes bytes through the next CRLF (included).
    func takeLine() throws -> [UInt8] {
        var from = 0
        while true {
            if let i = buffered[from...].firstIndex(of: 0x0A), i > 0, buffered[i - 1] == 0x0D { return try take(i + 1) }
            from = max(0, buffered.count - 1)
            guard try fill() else { throw WireError("EOF inside a line: \(String(decoding: buffered, as: UTF8.self))") }
        }
    }

    /// Reads a response head (a `100 Continue` is returned like any other head).
    func readHead() throws -> ResponseHead {
        var raw: [UInt8] = []
        let statusLine = try takeLine()
        raw += statusLine
        let parts = String(decoding: statusLine.dropLast(2), as: UTF8.self).split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw WireError("bad status line: \(String(decoding: statusLine, as: UTF8.self))")
        }
        var headers: [(name: String, value: String)] = []
        while true {
            let line = try takeLine()
            raw += line
            if line.count == 2 { break }
            let text = String(decoding: line.dropLast(2), as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else { throw WireError("bad header line: \(text)") }
            headers.append((String(text[..<colon]), text[text.index(after: colon)...].trimmingCharacters(in: " \t")))
        }
        return ResponseHead(status: status, headers: headers, raw: raw)
    }

    /// Reads one chunk: its data, nil for the last chunk (trailers consumed), and its raw bytes.
    func readChunk() throws -> (data: [UInt8]?, raw: [UInt8]) {
        let sizeLine = try takeLine()
        let sizeText = String(decoding: sizeLine.dropLast(2), as: UTF8.self).split(separator: ";").first ?? ""
        guard let size = Int(sizeText, radix: 16) else { throw WireError("bad chunk size line: \(sizeText)") }
        if size == 0 {
            var raw = sizeLine
            while true {
                let trailer = try takeLine()
                raw += trailer
                if trailer.count == 2 { return (nil, raw) }
            }
        }
        let data = try take(size)
        let crlf = try take(2)
        guard crlf == [0x0D, 0x0A] else { throw WireError("chunk data not followed by CRLF") }
        return (data, sizeLine + data + crlf)
    }

    /// Reads a whole response: by Content-Length, chunked, or until close (`requestWasHead`: no body).
    func readResponse(requestWasHead: Bool = false) throws -> Response {
        var head = try readHead()
        while head.status >= 100 && head.status < 200 { head = try readHead() }
        if requestWasHead || head.status == 204 || head.status == 304 { return Response(head: head, body: [], rawBody: []) }
        if head.isChunked {
            var body: [UInt8] = [], raw: [UInt8] = []
            while true {
                let chunk = try readChunk()
                raw += chunk.raw
                guard let data = chunk.data else { break }
                body += data
            }
            return Response(head: head, body: body, rawBody: raw)
        }
        if let length = head.header("Content-Length").flatMap({ Int($0) }) {
            let body = try take(length)
            return Response(head: head, body: body, rawBody: body)
        }
        let body = try readToEOF()
        return Response(head: head, body: body, rawBody: body)
    }

    /// The next `\n`-terminated line of a chunked body's data (NDJSON or SSE), newline included; nil when the
    /// body ended with its last chunk. Throws at EOF before either.
    func readLine() throws -> String? {
        while true {
            if let i = lineData.firstIndex(of: 0x0A) {
                defer { lineData.removeFirst(i + 1) }
                return String(decoding: lineData[0...i], as: UTF8.self)
            }
            guard let data = try readChunk().data else {
                return lineData.isEmpty ? nil : String(decoding: lineData, as: UTF8.self)
            }
            lineData += data
        }
    }

    /// Everything until the peer closes.
    func readToEOF() throws -> [UInt8] {
        while try fill() {}
        defer { buffered.removeAll() }
        return buffered
    }

    /// Whether the peer closes with nothing more to read (false when more bytes arrive first).
    func isClosedByPeer() throws -> Bool {
        if !buffered.isEmpty { return false }
        return try !fill()
    }
}

extension String {
    /// The string without leading and trailing characters from `set`.
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

extension Substring {
    /// The substring without leading and trailing characters from `set`, as a String.
    func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}
