import Testing
@testable import TollgateHTTP

@Suite("Request framing, Host and Connection")
struct RequestFramingTests {
    private func request(_ fields: String, version: String = "HTTP/1.1") -> (ParseResult, RequestHead, [UInt8]) {
        parseRequest("POST /api/chat \(version)\r\n\(fields)\r\n")
    }

    @Test("Content-Length gives contentLength framing", arguments: [
        ("0", 0), ("5", 5), ("0005", 5), ("123456789012345678", 123_456_789_012_345_678), (" 42 ", 42),
    ])
    func contentLength(value: String, length: Int) {
        let (result, head, _) = request("Host: h\r\nContent-Length: \(value)\r\n")
        #expect(result == .complete)
        #expect(head.framing == .contentLength(length))
    }

    @Test("A Content-Length that is not plain digits is 400", arguments: [
        "0x10", "+5", "", "1 2", "-1", "5,5", "5, 5", "1234567890123456789", "5a", "\u{663}", "1.0",
    ])
    func badContentLength(value: String) {
        let (result, _, _) = request("Host: h\r\nContent-Length: \(value)\r\n")
        #expect(status(result) == 400, "\(value)")
    }

    @Test("Two Content-Length fields are 400, even when equal", arguments: [("5", "5"), ("5", "6")])
    func twoContentLengths(first: String, second: String) {
        let (result, _, _) = request("Host: h\r\nContent-Length: \(first)\r\ncontent-length: \(second)\r\n")
        #expect(status(result) == 400)
    }

    @Test("Transfer-Encoding: chunked gives chunked framing (case-insensitive, OWS trimmed)", arguments: [
        "chunked", "Chunked", "CHUNKED", "  chunked\t",
    ])
    func chunked(value: String) {
        let (result, head, _) = request("Host: h\r\nTransfer-Encoding: \(value)\r\n")
        #expect(result == .complete)
        #expect(head.framing == .chunked)
    }

    @Test("Content-Length together with Transfer-Encoding is 400, in either order")
    func contentLengthAndTransferEncoding() {
        let a = request("Host: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n").0
        let b = request("Host: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n").0
        #expect(a == .invalid(HTTPParseError(status: 400, reason: "Content-Length and Transfer-Encoding together")))
        #expect(status(b) == 400)
        // Even when the coding itself would be 501.
        #expect(status(request("Host: h\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n").0) == 400)
    }

    @Test("Transfer-Encoding in an HTTP/1.0 request is 400")
    func transferEncodingInHTTP10() {
        let (result, _, _) = request("Transfer-Encoding: chunked\r\n", version: "HTTP/1.0")
        #expect(status(result) == 400)
    }

    @Test("Two Transfer-Encoding fields are 400")
    func twoTransferEncodings() {
        let (result, _, _) = request("Host: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")
        #expect(status(result) == 400)
    }

    @Test("A Transfer-Encoding other than exactly chunked is 501", arguments: [
        "gzip", "gzip, chunked", "chunked, chunked", "identity", "xchunked", "chunked;q=1", "", "chunked,",
        "chunkedx", "deflate",
    ])
    func unsupportedTransferEncoding(value: String) {
        let (result, _, _) = request("Host: h\r\nTransfer-Encoding: \(value)\r\n")
        #expect(status(result) == 501, "\(value)")
    }

    @Test("No Content-Length or Transfer-Encoding means no body")
    func noBody() {
        let (result, head, _) = request("Host: h\r\n")
        #expect(result == .complete)
        #expect(head.framing == .none)
    }

    @Test("HTTP/1.1 without Host is 400; with two Hosts is 400")
    func hostRequired() {
        #expect(status(request("X-A: b\r\n").0) == 400)
        #expect(status(request("Host: a\r\nHost: a\r\n").0) == 400)
        #expect(status(request("Host: a\r\nhOsT: b\r\n").0) == 400)
    }

    @Test("Bad Host values are 400", arguments: ["", "  ", "a b", "a/b", "user@host", "a\tb", "h\u{E9}"])
    func badHost(value: String) {
        #expect(status(request("Host: \(value)\r\n").0) == 400, "\(value)")
    }

    @Test("Good Host values pass", arguments: ["localhost", "127.0.0.1:11434", "[::1]:443", "api.example.com"])
    func goodHost(value: String) throws {
        let (result, head, buffer) = request("Host: \(value)\r\n")
        #expect(result == .complete)
        #expect(text(buffer, try #require(head.host)) == value)
    }

    @Test("Connection tokens decide keep-alive", arguments: [
        ("HTTP/1.1", "", true), ("HTTP/1.1", "Connection: close\r\n", false),
        ("HTTP/1.1", "Connection: keep-alive\r\n", true), ("HTTP/1.1", "Connection: Upgrade, CLOSE\r\n", false),
        ("HTTP/1.1", "Connection: foo\r\nConnection: close\r\n", false),
        ("HTTP/1.0", "", false), ("HTTP/1.0", "Connection: keep-alive\r\n", true),
        ("HTTP/1.0", "Connection: Keep-Alive , foo\r\n", true), ("HTTP/1.0", "Connection: keep-alive, close\r\n", false),
        ("HTTP/1.1", "Connection: closed\r\n", true),
    ])
    func keepAlive(version: String, fields: String, expected: Bool) {
        let (result, head, _) = request("Host: h\r\n\(fields)", version: version)
        #expect(result == .complete)
        #expect(head.keepAlive == expected)
    }

    @Test("Expect: 100-continue is recognised; other expectations are ignored", arguments: [
        ("HTTP/1.1", "100-continue", true), ("HTTP/1.1", "100-Continue", true), ("HTTP/1.1", "200-ok", false),
        ("HTTP/1.0", "100-continue", false),
    ])
    func expectContinue(version: String, value: String, expected: Bool) {
        let (result, head, _) = request("Host: h\r\nContent-Length: 3\r\nExpect: \(value)\r\n", version: version)
        #expect(result == .complete)
        #expect(head.expectContinue == expected)
    }
}
