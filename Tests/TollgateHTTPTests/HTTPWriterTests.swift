import Testing
@testable import TollgateHTTP

@Suite("HTTP writer")
struct HTTPWriterTests {
    private func written(_ body: (inout [UInt8]) -> Void) -> String {
        var out: [UInt8] = []
        body(&out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test("Status lines are byte-exact", arguments: [
        (200, HTTPVersion.http11, "HTTP/1.1 200 OK\r\n"), (404, .http11, "HTTP/1.1 404 Not Found\r\n"),
        (429, .http11, "HTTP/1.1 429 Too Many Requests\r\n"), (502, .http10, "HTTP/1.0 502 Bad Gateway\r\n"),
        (431, .http11, "HTTP/1.1 431 Request Header Fields Too Large\r\n"), (100, .http11, "HTTP/1.1 100 Continue\r\n"), (200, .http10, "HTTP/1.0 200 OK\r\n"),
    ])
    func statusLine(status: Int, version: HTTPVersion, expected: String) {
        #expect(written { HTTPWriter.appendStatusLine(status, version: version, to: &$0) } == expected)
    }

    @Test("The default version is HTTP/1.1")
    func defaultVersion() {
        #expect(written { HTTPWriter.appendStatusLine(204, to: &$0) } == "HTTP/1.1 204 No Content\r\n")
    }

    @Test("Headers are written as name: value CRLF, from strings or bytes")
    func headers() {
        #expect(written { HTTPWriter.appendHeader("Content-Type", "application/json", to: &$0) }
            == "Content-Type: application/json\r\n")
        let source = bytes("xx127.0.0.1:11434yy")
        #expect(written { HTTPWriter.appendHeader("Host", bytes: source[2..<17], to: &$0) } == "Host: 127.0.0.1:11434\r\n")
        let name = "X-Tollgate-" + "Lowered", value = "num_ctx=4096; café"
        #expect(written { HTTPWriter.appendField(name, value, to: &$0) } == "X-Tollgate-Lowered: num_ctx=4096; café\r\n")
    }

    @Test("A parsed field is written as name: value CRLF, whether it was sent that way or not", arguments: [
        ("X-A: value", "X-A: value"), ("X-A:value", "X-A: value"), ("X-A:  \t value \t ", "X-A: value"),
        ("X-A: ", "X-A: "), ("X-A:", "X-A: "), ("x-a: a b", "x-a: a b"), ("X-A:\tv", "X-A: v"), ("X-A: v ", "X-A: v"),
    ])
    func parsedField(line: String, expected: String) throws {
        let (result, head, buffer) = parseRequest("GET / HTTP/1.1\r\nHost: h\r\n\(line)\r\nX-B: next\r\n\r\n")
        try #require(result == .complete)
        #expect(written { HTTPWriter.appendField(head.headers[1], from: buffer, to: &$0) } == expected + "\r\n")
        #expect(written { HTTPWriter.appendField(head.headers[2], from: buffer, to: &$0) } == "X-B: next\r\n")
    }

    @Test("Raw strings and constants are appended unchanged")
    func raw() {
        var out = bytes("a")
        HTTPWriter.appendRaw("bc\r\n", to: &out)
        out += HTTPWriter.crlf
        out += HTTPWriter.lastChunk
        #expect(out == bytes("abc\r\n\r\n0\r\n\r\n"))
    }

    @Test("Decimals", arguments: [
        (0, "0"), (7, "7"), (10, "10"), (1234567890, "1234567890"), (-42, "-42"),
        (Int.max, "9223372036854775807"), (Int.min, "-9223372036854775808"),
    ])
    func decimal(n: Int, expected: String) {
        #expect(written { HTTPWriter.appendDecimal(n, to: &$0) } == expected)
    }

    @Test("Chunk headers are lowercase hex", arguments: [
        (0, "0\r\n"), (1, "1\r\n"), (26, "1a\r\n"), (255, "ff\r\n"), (4096, "1000\r\n"), (70000, "11170\r\n"),
        (Int.max, "7fffffffffffffff\r\n"),
    ])
    func chunkHeader(size: Int, expected: String) {
        #expect(written { HTTPWriter.appendChunkHeader(size: size, to: &$0) } == expected)
    }

    @Test("Written chunks decode back to the same data")
    func roundTrip() throws {
        var out: [UInt8] = []
        for piece in ["{\"response\":\"a\"}\n", "", "{\"done\":true}\n"] where !piece.isEmpty {
            HTTPWriter.appendChunkHeader(size: piece.utf8.count, to: &out)
            HTTPWriter.appendString(piece, to: &out)
            out += HTTPWriter.crlf
        }
        out += HTTPWriter.lastChunk
        var decoder = ChunkedDecoder()
        var data: [UInt8] = []
        let consumed = try decoder.decode(out, from: 0, to: out.count) { data += out[$0] }
        #expect(consumed == out.count)
        #expect(data == bytes("{\"response\":\"a\"}\n{\"done\":true}\n"))
    }

    @Test("Reason phrases", arguments: [
        (101, "Switching Protocols"), (206, "Partial Content"), (301, "Moved Permanently"), (302, "Found"),
        (304, "Not Modified"), (400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden"),
        (413, "Content Too Large"), (414, "URI Too Long"), (417, "Expectation Failed"),
        (499, "Client Closed Request"), (500, "Internal Server Error"), (501, "Not Implemented"),
        (503, "Service Unavailable"), (504, "Gateway Timeout"), (505, "HTTP Version Not Supported"),
        (299, "Success"), (460, "Client Error"), (42, ""),
    ])
    func reasons(status: Int, phrase: String) {
        #expect(HTTPWriter.reasonPhrase(status).description == phrase)
    }
}
