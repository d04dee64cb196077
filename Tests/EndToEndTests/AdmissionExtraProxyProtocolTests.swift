import FakeOllama
import Testing
import Tollgate
import TollgateIO

/// PROXY protocol v1/v2 on the listeners: the header's source address is the client (what Ollama sees in
/// X-Forwarded-For, what the rate limit counts), a connection without a valid header is closed with nothing forwarded,
/// and a ClientHello glued to the header is left for OpenSSL.
@Suite struct AdmissionExtraProxyProtocolTests {
    static func withProxyProtocol(configure: @escaping (inout ServerConfig) -> Void = { _ in },
                                  body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        try withProxyAndFake(configure: { config in
            config.proxyProtocol = true
            configure(&config)
        }, body: body)
    }

    /// A TLS client that sent `prefix` first.
    static func tls(_ proxy: Proxy, _ prefix: [UInt8], sameWrite: Bool = false) throws -> HTTPClient {
        HTTPClient(try PrefixedTLSStream(port: proxy.tlsPort, prefix: prefix, sameWrite: sameWrite))
    }

    /// A plain client that sent `prefix` and `request` in one write.
    static func plain(_ proxy: Proxy, _ prefix: [UInt8], _ request: String) throws -> Response {
        let client = try proxy.plain()
        defer { client.close() }
        try client.send(prefix + bytes(request))
        return try client.readResponse()
    }

    @Test func v1AndV2BeforeTLSNameTheClientUpstream() throws {
        try Self.withProxyProtocol { proxy, fake in
            let v1 = try Self.tls(proxy, ProxyHeader.v1("203.0.113.7"))
            defer { v1.close() }
            #expect(try v1.exchange(Req.get("/api/version")).status == 200)
            let v2 = try Self.tls(proxy, ProxyHeader.v2((198, 51, 100, 9)))
            defer { v2.close() }
            #expect(try v2.exchange(Req.get("/api/tags")).status == 200)
            // Keep-alive: the header is read once, the second request keeps the address.
            #expect(try v2.exchange(Req.get("/api/version")).status == 200)
            #expect(fake.requests.map { $0.header("X-Forwarded-For") } == ["203.0.113.7", "198.51.100.9", "198.51.100.9"])
            #expect(fake.requests.allSatisfy { $0.header("X-Forwarded-Proto") == "https" })
        }
    }

    @Test func v1AndV2BeforePlainHTTPNameTheClientUpstream() throws {
        try Self.withProxyProtocol { proxy, fake in
            #expect(try Self.plain(proxy, ProxyHeader.v1("192.0.2.44"), Req.get("/api/version")).status == 200)
            #expect(try Self.plain(proxy, ProxyHeader.v2((192, 0, 2, 45)), Req.get("/api/version")).status == 200)
            // The header in its own write, the request in the next.
            let client = try proxy.plain()
            defer { client.close() }
            try client.send(ProxyHeader.v1("192.0.2.46"))
            #expect(try client.exchange(Req.get("/api/version")).status == 200)
            #expect(fake.requests.map { $0.header("X-Forwarded-For") } == ["192.0.2.44", "192.0.2.45", "192.0.2.46"])
        }
    }

    @Test func theRateLimitCountsTheHeadersSourceNotTheTCPPeer() throws {
        var settings = RateLimitSettings()
        settings.ratePerSecond = 0.001
        settings.burst = 0
        try Self.withProxyProtocol(configure: { $0.rateLimit = settings }) { proxy, fake in
            // Every connection comes from 127.0.0.1; two sources behind it get a bucket each.
            let a1 = try Self.tls(proxy, ProxyHeader.v1("203.0.113.1"))
            defer { a1.close() }
            #expect(try a1.exchange(Req.get("/api/version")).status == 200)
            let b1 = try Self.plain(proxy, ProxyHeader.v2((203, 0, 113, 2)), Req.get("/api/version"))
            #expect(b1.status == 200)
            let a2 = try Self.plain(proxy, ProxyHeader.v1("203.0.113.1"), Req.get("/api/version"))
            expectError(a2, status: 429, family: .ollama)
            let b2 = try Self.tls(proxy, ProxyHeader.v2((203, 0, 113, 2)))
            defer { b2.close() }
            let b2Response = try b2.exchange(Req.get("/api/version"))
            expectError(b2Response, status: 429, family: .ollama)
            #expect(try Self.plain(proxy, ProxyHeader.v1("203.0.113.3"), Req.get("/api/version")).status == 200)
            #expect(fake.requests.map { $0.header("X-Forwarded-For") } == ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
        }
    }

    @Test(arguments: [
        "GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "PROXY TCP4 999.0.0.1 10.0.0.1 40000 443\r\nGET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 40000\r\nGET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "PROXY  TCP4 203.0.113.7 10.0.0.1 40000 443\r\nGET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "PROXY TCP6 203.0.113.7 10.0.0.1 40000 443\r\nGET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 040000 443\r\nGET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\nGET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "\r\n\r\n\0\r\nQUIT\n\u{31}\u{11}\0\u{0C}GET /api/version HTTP/1.1\r\n\r\n",
    ])
    func aMissingOrMalformedHeaderClosesThePlainConnectionWithNothingForwarded(_ request: String) throws {
        try Self.withProxyProtocol { proxy, fake in
            let client = try proxy.plain()
            defer { client.close() }
            try client.send(request)
            #expect(try client.readToEOF().isEmpty, "the proxy answered instead of closing")
            #expect(fake.requests.isEmpty)
            // The listener still serves a well-formed client.
            #expect(try Self.plain(proxy, ProxyHeader.v1("192.0.2.1"), Req.get("/api/version")).status == 200)
            #expect(fake.requests.count == 1)
        }
    }

    @Test func aTLSClientWithoutAHeaderIsClosedWithNothingForwarded() throws {
        try Self.withProxyProtocol { proxy, fake in
            // The ClientHello is not a PROXY header: the connection closes before any handshake.
            #expect(throws: (any Error).self) { try proxy.tls() }
            let garbage = bytes("PROXY TCP4 1.2.3 10.0.0.1 1 2\r\n")
            #expect(throws: (any Error).self) { try Self.tls(proxy, garbage) }
            #expect(fake.requests.isEmpty)
            let good = try Self.tls(proxy, ProxyHeader.v1("192.0.2.2"))
            defer { good.close() }
            #expect(try good.exchange(Req.get("/api/version")).status == 200)
        }
    }

    @Test(arguments: [false, true])
    func aClientHelloInTheSameWriteAsTheHeaderIsLeftForOpenSSL(_ v2: Bool) throws {
        try Self.withProxyProtocol { proxy, fake in
            let header = v2 ? ProxyHeader.v2((203, 0, 113, 77)) : ProxyHeader.v1("203.0.113.77")
            let client = try Self.tls(proxy, header, sameWrite: true)
            defer { client.close() }
            let response = try client.exchange(Req.generate())
            #expect(response.status == 200)
            #expect(finalOllamaCounts(response) != nil, "\(response.text)")
            #expect(fake.requests.map { $0.header("X-Forwarded-For") } == ["203.0.113.77"])
        }
    }

    /// A client already at `max-connections-per-client` by the header's address is closed at the header: requests
    /// pipelined behind it in the same segment are not served, and nothing reaches the upstream.
    @Test(arguments: [false, true])
    func aConnectionOverThePerClientCapIsClosedBeforeItsRequestsAreServed(_ v2: Bool) throws {
        try Self.withProxyProtocol(configure: { $0.maxConnectionsPerClient = 1 }) { proxy, fake in
            let header = v2 ? ProxyHeader.v2((203, 0, 113, 50)) : ProxyHeader.v1("203.0.113.50")
            let first = try proxy.plain()
            defer { first.close() }
            try first.send(header)
            #expect(try first.exchange(Req.get("/api/version")).status == 200)
            let over = try proxy.plain()
            defer { over.close() }
            try over.send(header + bytes(String(repeating: Req.get("/api/tags"), count: 3)))
            #expect((try? over.readResponse()) == nil, "the connection over the cap is closed unanswered")
            #expect(fake.requests.map(\.target) == ["/api/version"])
            // The cap counts clients, not the load balancer: another source is still served.
            let other = try Self.plain(proxy, ProxyHeader.v1("203.0.113.51"), Req.get("/api/version"))
            #expect(other.status == 200)
        }
    }

    @Test func theAccessLogNamesTheHeadersSource() throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        try Self.withProxyProtocol(configure: { config in
            config.accessLog = .json
            config.accessLogPath = log
        }) { proxy, _ in
            let client = try Self.tls(proxy, ProxyHeader.v1("203.0.113.99"))
            defer { client.close() }
            #expect(try client.exchange(Req.get("/api/version")).status == 200)
            let lines = OpsFiles.waitForLines(log, count: 1)
            let objects = accessLogObjects(lines)
            #expect(objects.count == 1)
            #expect(objects.first??["client"] as? String == "203.0.113.99", "\(lines)")
        }
    }
}
