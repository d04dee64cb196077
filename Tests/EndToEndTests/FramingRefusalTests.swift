import Testing

/// Every framing case a proxy must refuse (RFC 9112 6.1-6.3, 11.2), sent over TLS: answered with its status, the connection closed, and
/// nothing reaching the upstream (a sentinel request sent afterwards is the only one fake-ollama saw).
@Suite struct FramingRefusalTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let request: String
        let status: Int
        var testDescription: String { name }
    }

    private static let post = "POST /api/generate HTTP/1.1\r\nHost: localhost\r\n"
    private static let smuggled = "GET /api/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"

    static let cases: [Case] = [
        Case(name: "Content-Length with Transfer-Encoding",
             request: post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400),
        Case(name: "two Content-Length", request: post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", status: 400),
        Case(name: "Content-Length list", request: post + "Content-Length: 5, 5\r\n\r\nhello", status: 400),
        Case(name: "Content-Length 0x10", request: post + "Content-Length: 0x10\r\n\r\n0123456789abcdef", status: 400),
        Case(name: "Content-Length +5", request: post + "Content-Length: +5\r\n\r\nhello", status: 400),
        Case(name: "Content-Length empty", request: post + "Content-Length: \r\n\r\n", status: 400),
        Case(name: "Transfer-Encoding in HTTP/1.0",
             request: "POST /api/generate HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400),
        Case(name: "space before colon", request: post + "Content-Length : 5\r\n\r\nhello", status: 400),
        Case(name: "space before colon in Transfer-Encoding",
             request: post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", status: 400),
        Case(name: "obs-fold", request: "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n", status: 400),
        Case(name: "NUL in a field", request: "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nX-A: a\u{0}b\r\n\r\n", status: 400),
        Case(name: "bare CR in a field", request: "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n", status: 400),
        Case(name: "chunk size -0x0", request: post + "Transfer-Encoding: chunked\r\n\r\n-0x0\r\n\r\n", status: 400),
        Case(name: "chunk size with leading space", request: post + "Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", status: 400),
        Case(name: "chunk size overflow",
             request: post + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", status: 400),
        Case(name: "HTTP/1.1 without Host", request: "GET /api/tags HTTP/1.1\r\n\r\n", status: 400),
        Case(name: "two Host", request: "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n", status: 400),
        Case(name: "too many headers",
             request: "GET /api/tags HTTP/1.1\r\nHost: localhost\r\n"
                + (0..<150).map { "X-H\($0): v\r\n" }.joined() + "\r\n", status: 431),
        Case(name: "header section too large",
             request: "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nX-Big: " + String(repeating: "a", count: 40_000) + "\r\n\r\n",
             status: 431),
        Case(name: "Transfer-Encoding gzip", request: post + "Transfer-Encoding: gzip\r\n\r\n", status: 501),
        Case(name: "Transfer-Encoding xchunked", request: post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", status: 501),
        Case(name: "Transfer-Encoding chunked, identity",
             request: post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", status: 501),
        Case(name: "two Transfer-Encoding",
             request: post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", status: 400),
        Case(name: "CL.TE smuggle", request: post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
             status: 400),
        Case(name: "TE.CL smuggle",
             request: post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2f\r\n" + smuggled + "\r\n0\r\n\r\n",
             status: 400),
        Case(name: "bad chunk after a valid one smuggling a request",
             request: post + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n" + smuggled, status: 400),
    ]

    @Test(arguments: cases)
    func refusedAndClosedWithNothingForwarded(_ refusal: Case) throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(refusal.request)
            let response = try client.readResponse()
            #expect(response.status == refusal.status)
            #expect(response.text.hasPrefix(#"{"error":""#))
            #expect(response.head.header("Connection") == "close")
            #expect(try client.isClosedByPeer(), "the connection stayed open")
            try proxy.expectOnlySentinelArrived(after: 0)
            #expect(!fake.requests.contains { $0.target.contains("smuggled") })
        }
    }

    @Test func badChunkAfterTheHeadWasForwardedIsRefused() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST /api/blobs/sha256:abc HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n")
            // A blob upload streams: the proxy connects upstream once it has the head, the body so far on its way.
            #expect(fake.waitForOpenConnections(1, timeoutSeconds: eventTimeout))
            try client.send("-0x0\r\n\r\n" + Self.smuggled)
            let response = try client.readResponse()
            #expect(response.status == 400)
            #expect(try client.isClosedByPeer())
            try proxy.expectOnlySentinelArrived(after: 0)
        }
    }

    @Test(arguments: ["chunked\t", "ChUnKeD", "CHUNKED", " chunked "])
    func tolerableTransferEncodingSpellingsAreAccepted(value: String) throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let body = #"{"model":"mistral:7b"}"#
            try client.send("POST /api/show HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding:\(value)\r\n\r\n"
                + String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            #expect(fake.requests.first?.body == bytes(body))
            #expect(fake.requests.first?.header("Transfer-Encoding") == "chunked")
        }
    }
}
