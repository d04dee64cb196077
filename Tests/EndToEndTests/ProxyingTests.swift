import FakeOllama
import Testing
import Tollgate

/// Plain request/response proxying: bodies as the upstream sent them, keep-alive, pipelining, and what the
/// upstream sees of the client's request.
@Suite struct ProxyingTests {
    /// The same GET sent straight to fake-ollama.
    private func direct(_ fake: FakeOllamaServer, _ path: String) throws -> Response {
        let client = HTTPClient(try PlainStream(port: fake.port))
        defer { client.close() }
        try client.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(fake.port)\r\n\r\n")
        return try client.readResponse()
    }

    @Test(arguments: ["/api/version", "/api/tags", "/v1/models", "/"])
    func getIsByteIdenticalToDirect(path: String) throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let proxied = try client.readResponse()
            let straight = try direct(fake, path)
            #expect(proxied.status == straight.status)
            #expect(proxied.rawBody == straight.rawBody)
            #expect(proxied.head.header("Content-Type") == straight.head.header("Content-Type"))
            #expect(proxied.head.header("Content-Length") == straight.head.header("Content-Length"))
        }
    }

    @Test func severalRequestsShareOneConnection() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            for path in ["/api/version", "/api/tags", "/api/ps", "/api/version"] {
                try client.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.head.header("Connection") == nil)
            }
            #expect(fake.requests.map(\.target) == ["/api/version", "/api/tags", "/api/ps", "/api/version"])
        }
    }

    @Test func requestIdIsReturnedAndForwarded() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            var ids: [String] = []
            for _ in 0..<2 {
                try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: client-chosen\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.head.count("X-Request-Id") == 1)
                ids.append(try #require(response.head.header("X-Request-Id")))
            }
            let upstream = fake.requests
            try #require(upstream.count == 2)
            #expect(upstream.map { $0.header("X-Request-Id") } == ids)
            #expect(upstream.allSatisfy { r in r.headers.filter { $0.name.lowercased() == "x-request-id" }.count == 1 })
            #expect(ids[0] != ids[1])
            #expect(!ids.contains("client-chosen"))
        }
    }

    @Test func upstreamSeesRewrittenHostAndNoCredentials() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET /api/tags HTTP/1.1\r\nHost: ollama.example.com\r\n"
                + "Authorization: Basic dXNlcjpwYXNz\r\nx-api-key: sk-secret\r\nProxy-Authorization: Basic eDp5\r\n"
                + "Proxy-Connection: keep-alive\r\nOrigin: https://evil.example\r\nReferer: https://evil.example/page\r\n"
                + "Connection: keep-alive, X-Hop\r\nX-Hop: nominated\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
                + "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: http\r\nX-Custom: kept\r\nUser-Agent: e2e\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            let seen = try #require(fake.requests.first)
            #expect(seen.version == "HTTP/1.1")
            #expect(seen.headers.filter { $0.name.lowercased() == "host" }.map(\.value) == [proxy.upstreamHost])
            for dropped in ["Authorization", "x-api-key", "Proxy-Authorization", "Proxy-Connection", "Origin",
                            "Referer", "Connection", "X-Hop", "Keep-Alive", "TE"] {
                #expect(seen.header(dropped) == nil, "\(dropped) reached the upstream")
            }
            #expect(seen.headers.filter { $0.name.lowercased() == "x-forwarded-for" }.map(\.value) == ["127.0.0.1"])
            #expect(seen.headers.filter { $0.name.lowercased() == "x-forwarded-proto" }.map(\.value) == ["https"])
            #expect(seen.header("X-Custom") == "kept")
            #expect(seen.header("User-Agent") == "e2e")
        }
    }

    @Test func eachRequestOnAConnectionNamesItsOwnClientUpstream() throws {
        // Behind a trusted proxy one connection carries many clients: each request's forwarding headers name the
        // client it came from, not the first one's (the connection keeps the head parts of its own peer only).
        try withProxyAndFake(configure: { $0.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!] }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            for forwarded in ["203.0.113.7", "198.51.100.9", nil, "2001:db8::1", nil] {
                let header = forwarded.map { "X-Forwarded-For: \($0)\r\n" } ?? ""
                try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\(header)\r\n")
                #expect(try client.readResponse().status == 200)
            }
            let seen = fake.requests
            #expect(seen.map { $0.headers.filter { $0.name.lowercased() == "x-forwarded-for" }.map(\.value) }
                == [["203.0.113.7"], ["198.51.100.9"], ["127.0.0.1"], ["2001:db8::1"], ["127.0.0.1"]])
            #expect(seen.allSatisfy { $0.header("X-Forwarded-Proto") == "https" })
            #expect(seen.allSatisfy { $0.header("Host") == proxy.upstreamHost })
        }
    }

    @Test func plainListenerForwardsProtoHttp() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.plain()
            defer { client.close() }
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            #expect(fake.requests.first?.header("X-Forwarded-Proto") == "http")
        }
    }

    @Test func pipelinedRequestsAnswerInOrder() throws {
        try withProxyAndFake { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let paths = ["/api/version", "/api/tags", "/api/ps"]
            try client.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: localhost\r\n\r\n" }.joined())
            var bodies: [String] = []
            for _ in paths {
                let response = try client.readResponse()
                #expect(response.status == 200)
                bodies.append(response.text)
            }
            #expect(fake.requests.map(\.target) == paths)
            #expect(try bodies == paths.map { try direct(fake, $0).text })
            // The connection is still usable afterwards.
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().text == bodies[0])
        }
    }

    @Test func connectionCloseIsHonoured() throws {
        try withProxyAndFake { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.head.header("Connection") == "close")
            #expect(try client.isClosedByPeer())
        }
    }
}
