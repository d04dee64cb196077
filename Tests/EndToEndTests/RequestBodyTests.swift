import Testing
import Tollgate

/// Request bodies reach the upstream intact whatever their framing, 100-continue is answered, and bodies over a
/// route's limit are refused with 413 in the caller's API shape before a complete request reaches the upstream.
@Suite struct RequestBodyTests {
    /// A JSON body of about `size` bytes that fake-ollama accepts on /api/generate.
    static func bigGenerate(_ size: Int) -> String {
        #"{"model":"mistral:7b","stream":false,"prompt":""# + String(repeating: "abcdefghij", count: size / 10) + #""}"#
    }

    @Test func contentLengthBodyArrivesIntact() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let body = Self.bigGenerate(300_000)
            try client.send(StreamingTests.post("/api/generate", body))
            #expect(try client.readResponse().status == 200)
            let seen = try #require(fake.requests.first)
            #expect(seen.body == bytes(body))
            #expect(seen.header("Content-Length") == String(body.utf8.count))
        }
    }

    @Test func chunkedBodyArrivesIntact() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let body = Self.bigGenerate(100_000)
            let parts = [body.prefix(10), body.dropFirst(10).prefix(70_000), body.dropFirst(70_010)]
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in parts {
                try client.send(String(part.utf8.count, radix: 16) + "\r\n" + part + "\r\n")
            }
            try client.send("0\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            let seen = try #require(fake.requests.first)
            #expect(seen.body == bytes(body))
            #expect(seen.header("Transfer-Encoding") == "chunked")
            #expect(seen.header("Content-Length") == nil)
        }
    }

    @Test func chunkExtensionsAndTrailersAreReframedAway() throws {
        let raw = try RawUpstream()
        try withProxyAndFake(configure: { $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(raw.port)")! }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST /api/blobs/sha256:abc HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5;name=value\r\nhello\r\n6;a=\"quoted\";b\r\n world\r\n0;last=1\r\nX-Trailer: t\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.text == "ok")
            let upstream = raw.received()
            #expect(String(decoding: upstream.afterHead, as: UTF8.self) == "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            #expect(!String(decoding: upstream, as: UTF8.self).contains("X-Trailer"))
        }
    }

    @Test func expectContinueOnAStreamedBodyGets100OnceBeforeTheFinalResponse() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST /api/blobs/sha256:abc HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                + "Content-Length: 4\r\n\r\n")
            let interim = try client.readHead()
            #expect(interim.raw == bytes("HTTP/1.1 100 Continue\r\n\r\n"))
            try client.send("blob")
            let response = try client.readResponse()
            #expect(response.status == 201)
            let seen = try #require(fake.requests.first)
            #expect(seen.body == bytes("blob"))
            #expect(seen.header("Expect") == nil)
        }
    }

    @Test func expectContinueGets100BeforeTheFinalResponse() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let body = #"{"model":"mistral:7b"}"#
            try client.send("POST /api/show HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n")
            let interim = try client.readHead()
            #expect(interim.status == 100)
            #expect(interim.raw == bytes("HTTP/1.1 100 Continue\r\n\r\n"))
            try client.send(body)
            let response = try client.readResponse()
            #expect(response.status == 200)
            let seen = try #require(fake.requests.first)
            #expect(seen.body == bytes(body))
            #expect(seen.header("Expect") == nil)
        }
    }

    /// The path, body and expected error JSON per API family (limit 100 bytes).
    static let families: [(path: String, body: String, error: String)] = [
        ("/api/generate", bigGenerate(200),
         #"{"error":"request body larger than the 100-byte limit for this route"}"#),
        ("/v1/chat/completions", bigGenerate(200),
         #"{"error":{"message":"request body larger than the 100-byte limit for this route","type":"invalid_request_error","param":null,"code":null}}"#),
        ("/v1/messages", bigGenerate(200),
         #"{"type":"error","error":{"type":"request_too_large","message":"request body larger than the 100-byte limit for this route"}}"#),
    ]

    @Test(arguments: 0..<3)
    func declaredLengthOverTheLimitIs413(family: Int) throws {
        let (path, body, error) = Self.families[family]
        try withProxyAndFake(configure: { $0.bodyLimits.inference = 100 }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(StreamingTests.post(path, body))
            let response = try client.readResponse()
            #expect(response.status == 413)
            #expect(response.head.header("Content-Type") == "application/json; charset=utf-8")
            #expect(response.text == error)
            #expect(response.head.header("X-Request-Id") != nil)
            #expect(try client.isClosedByPeer())
            try proxy.expectOnlySentinelArrived(after: 0)
        }
    }

    @Test(arguments: 0..<3)
    func chunkedBodyOverTheLimitIs413(family: Int) throws {
        let (path, _, error) = Self.families[family]
        try withProxyAndFake(configure: { $0.bodyLimits.inference = 100 }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST \(path) HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
            let chunk = "40\r\n" + String(repeating: "x", count: 64) + "\r\n"
            try client.send(chunk + chunk)
            let response = try client.readResponse()
            #expect(response.status == 413)
            #expect(response.text == error)
            #expect(response.head.header("Connection") == "close")
            #expect(try client.isClosedByPeer())
            try proxy.expectOnlySentinelArrived(after: 0)
        }
    }

    @Test func bodyAtTheLimitPasses() throws {
        try withProxyAndFake(configure: { $0.bodyLimits.other = 22 }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let body = #"{"model":"mistral:7b"}"#
            #expect(body.utf8.count == 22)
            try client.send(StreamingTests.post("/api/show", body))
            #expect(try client.readResponse().status == 200)
            #expect(fake.requests.first?.body == bytes(body))
        }
    }
}
