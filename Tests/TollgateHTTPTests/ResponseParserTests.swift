import Testing
@testable import TollgateHTTP

@Suite("Response parser")
struct ResponseParserTests {
    private func parse(_ s: String, head requestWasHead: Bool = false) -> (ParseResult, ResponseHead, [UInt8]) {
        let buffer = bytes(s)
        var head = ResponseHead()
        let result = ResponseParser().parse(buffer, from: 0, to: buffer.count, requestWasHead: requestWasHead,
                                            into: &head)
        return (result, head, buffer)
    }

    @Test("A status line parses into version, status and reason")
    func statusLine() {
        let (result, head, buffer) = parse("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        #expect(result == .complete)
        #expect(head.status == 404)
        #expect(head.version == .http11)
        #expect(text(buffer, head.reason) == "Not Found")
        #expect(head.headLength == buffer.count)
    }

    @Test("An empty reason, with or without the space, is accepted", arguments: [
        "HTTP/1.1 200 \r\n", "HTTP/1.1 200\r\n",
    ])
    func emptyReason(line: String) {
        let (result, head, _) = parse(line + "Content-Length: 0\r\n\r\n")
        #expect(result == .complete)
        #expect(head.status == 200)
        #expect(head.reason.isEmpty)
    }

    @Test("Malformed status lines are 502", arguments: [
        "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 abc OK", "HTTP/1.1  200 OK", "HTTP/1.1 200OK",
        "HTTP/2.0 200 OK", "HTTP/1.1 099 Low", "HTTP/1.1 600 High", "http/1.1 200 OK", "ICY 200 OK", "",
    ])
    func malformed(line: String) {
        #expect(status(parse(line + "\r\nContent-Length: 0\r\n\r\n").0) == 502, "\(line)")
    }

    @Test("Field syntax errors in a response are 502")
    func fieldErrors() {
        #expect(status(parse("HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n").0) == 502)
        #expect(status(parse("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n").0) == 502)
        #expect(status(parse("HTTP/1.1 200 OK\nX-A: 1\r\n\r\n").0) == 502)
    }

    @Test("No body for HEAD requests, 1xx, 204 and 304, whatever the headers say", arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true),
        ("HTTP/1.1 100 Continue\r\n\r\n", false),
        ("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false),
        ("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false),
    ])
    func noBody(response: String, requestWasHead: Bool) {
        let (result, head, _) = parse(response, head: requestWasHead)
        #expect(result == .complete)
        #expect(head.framing == .none)
        #expect(head.keepAlive)
    }

    @Test("Transfer-Encoding ending in chunked is chunked, and Content-Length is ignored", arguments: [
        "Transfer-Encoding: chunked\r\n", "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n",
    ])
    func chunked(fields: String) {
        let (result, head, _) = parse("HTTP/1.1 200 OK\r\n\(fields)\r\n")
        #expect(result == .complete)
        #expect(head.framing == .chunked)
        #expect(head.keepAlive)
    }

    @Test("Content-Length beside chunked is ignored but the connection is not reused")
    func chunkedWithContentLength() {
        let (result, head, _) = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(result == .complete)
        #expect(head.framing == .chunked)
        #expect(!head.keepAlive)
    }

    @Test("Transfer-Encoding not ending in chunked reads until close", arguments: [
        "gzip", "chunked, gzip", "",
    ])
    func notChunkedFinal(value: String) {
        let (result, head, _) = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: \(value)\r\n\r\n")
        #expect(result == .complete)
        #expect(head.framing == .untilClose)
        #expect(!head.keepAlive)
    }

    @Test("Valid Content-Length values, including identical repeats", arguments: [
        ("Content-Length: 5\r\n", 5), ("Content-Length: 5, 5\r\n", 5), ("Content-Length: 5\r\nContent-Length: 5\r\n", 5),
        ("Content-Length: 0\r\n", 0),
    ])
    func contentLength(fields: String, length: Int) {
        let (result, head, _) = parse("HTTP/1.1 200 OK\r\n\(fields)\r\n")
        #expect(result == .complete)
        #expect(head.framing == .contentLength(length))
        #expect(head.keepAlive)
    }

    @Test("Invalid Content-Length is 502", arguments: [
        "Content-Length: 5, 6\r\n", "Content-Length: 5\r\nContent-Length: 6\r\n", "Content-Length: abc\r\n",
        "Content-Length: \r\n", "Content-Length: -1\r\n", "Content-Length: +5\r\n", "Content-Length: 0x10\r\n",
    ])
    func invalidContentLength(fields: String) {
        #expect(status(parse("HTTP/1.1 200 OK\r\n\(fields)\r\n").0) == 502)
    }

    @Test("No framing headers reads until close")
    func untilClose() {
        let (result, head, _) = parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        #expect(result == .complete)
        #expect(head.framing == .untilClose)
        #expect(!head.keepAlive)
    }

    @Test("Keep-alive follows version and Connection", arguments: [
        ("HTTP/1.1", "", true), ("HTTP/1.1", "Connection: close\r\n", false), ("HTTP/1.0", "", false),
        ("HTTP/1.0", "Connection: keep-alive\r\n", true),
    ])
    func keepAlive(version: String, fields: String, expected: Bool) {
        let (result, head, _) = parse("\(version) 200 OK\r\nContent-Length: 0\r\n\(fields)\r\n")
        #expect(result == .complete)
        #expect(head.keepAlive == expected)
    }

    @Test("A response head arriving byte by byte is needMore until complete")
    func byteByByte() {
        let buffer = bytes("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")
        var head = ResponseHead()
        let parser = ResponseParser()
        for end in 0..<buffer.count {
            #expect(parser.parse(buffer, from: 0, to: end, requestWasHead: false, into: &head) == .needMore)
        }
        #expect(parser.parse(buffer, from: 0, to: buffer.count, requestWasHead: false, into: &head) == .complete)
        #expect(head.headLength == buffer.count)
        #expect(head.headers.count == 2)
        #expect(head.headers[1].kind == .transferEncoding)
    }

    @Test("A response head over its limits is 502")
    func limits() {
        let parser = ResponseParser(limits: HTTPLimits(maxRequestLine: 100, maxHeaderCount: 2, maxHeadBytes: 200))
        var head = ResponseHead()
        let many = bytes("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
        #expect(status(parser.parse(many, from: 0, to: many.count, requestWasHead: false, into: &head)) == 502)
        let long = bytes("HTTP/1.1 200 " + String(repeating: "x", count: 300))
        #expect(status(parser.parse(long, from: 0, to: long.count, requestWasHead: false, into: &head)) == 502)
    }
}

/// Findings of the fuzzer (fuzz/crashes/), kept as regressions.
@Suite struct ResponseParserFuzzFindingTests {
    private func parse(_ text: String, head wasHead: Bool = false) -> (ParseResult, ResponseHead) {
        var head = ResponseHead()
        let bytes = Array(text.utf8)
        let r = ResponseParser().parse(bytes, from: 0, to: bytes.count, requestWasHead: wasHead, into: &head)
        return (r, head)
    }

    @Test func contentLengthOfOnlyEmptyListItemsIsRefused() {
        let (r, _) = parse("HTTP/1.1 200 OK\r\nContent-Length: ,\r\n\r\nabc")
        guard case .invalid(let e) = r else { Issue.record("accepted: \(r)"); return }
        #expect(e.status == 502)
    }

    @Test(arguments: ["HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
                      "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"])
    func contentLengthWithTransferEncodingIsNeverKeptAlive(_ text: String) {
        let (r, head) = parse(text)
        #expect(r == .complete)
        #expect(head.framing == .none)
        #expect(!head.keepAlive)
    }
}
