import Testing
@testable import TollgateHTTP

@Suite("Incremental and pipelined parsing")
struct IncrementalParsingTests {
    static let requests = [
        "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
        "\r\nPOST /api/generate HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nContent-Type: application/json\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    ]

    @Test("Feeding a head one byte at a time gives needMore until the last byte", arguments: requests)
    func byteByByte(request: String) {
        let buffer = bytes(request)
        var head = RequestHead()
        let parser = RequestParser()
        for end in 0..<buffer.count {
            #expect(parser.parse(buffer, from: 0, to: end, into: &head) == .needMore, "at \(end)")
        }
        #expect(parser.parse(buffer, from: 0, to: buffer.count, into: &head) == .complete)
        #expect(head.headLength == buffer.count)
    }

    @Test("A refused byte is refused as soon as it arrives, without waiting for the line end")
    func earlyRefusal() {
        let buffer = bytes("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x")
        var head = RequestHead()
        #expect(status(RequestParser().parse(buffer, from: 0, to: 29, into: &head)) == 400)
    }

    @Test("Pipelined requests in one buffer parse back to back using headLength and the body length")
    func pipelined() throws {
        let wire = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            + "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        let buffer = bytes(wire)
        var head = RequestHead()
        let parser = RequestParser()
        var start = 0
        var paths: [String] = []
        while start < buffer.count {
            try #require(parser.parse(buffer, from: start, to: buffer.count, into: &head) == .complete)
            paths.append(text(buffer, head.path))
            start += head.headLength
            if case .contentLength(let n) = head.framing { start += n }
        }
        #expect(paths == ["/a", "/b", "/c"])
        #expect(start == buffer.count)
        #expect(!head.keepAlive)
    }

    @Test("Parsing at a non-zero start gives ranges into the whole buffer")
    func nonZeroStart() throws {
        let prefix = bytes("garbage before")
        let buffer = prefix + bytes("PUT /x?y HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\ntrailing")
        var head = RequestHead()
        let result = RequestParser().parse(buffer, from: prefix.count, to: buffer.count, into: &head)
        #expect(result == .complete)
        #expect(head.method == .put)
        #expect(text(buffer, head.target) == "/x?y")
        #expect(text(buffer, head.headers[1].value) == "1")
        #expect(head.headLength == buffer.count - prefix.count - "trailing".utf8.count)
    }

    @Test("Limits count from start, not from index 0")
    func limitsFromStart() {
        let prefix = [UInt8](repeating: 0x41, count: 500)
        let buffer = prefix + bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        var head = RequestHead()
        let parser = RequestParser(limits: HTTPLimits(maxRequestLine: 20, maxHeadBytes: 40))
        #expect(parser.parse(buffer, from: 500, to: buffer.count, into: &head) == .complete)
    }

    @Test("The head is reset between parses and header storage keeps its capacity")
    func reuse() {
        var head = RequestHead()
        let parser = RequestParser()
        let first = bytes("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        #expect(parser.parse(first, from: 0, to: first.count, into: &head) == .complete)
        let capacity = head.headers.capacity
        let second = bytes("GET / HTTP/1.0\r\n\r\n")
        #expect(parser.parse(second, from: 0, to: second.count, into: &head) == .complete)
        #expect(head.headers.isEmpty)
        #expect(head.headers.capacity == capacity)
        #expect(head.host == nil)
        #expect(head.framing == .none)
        #expect(!head.expectContinue)
        #expect(RequestHead().headers.capacity >= 32)
    }
}
