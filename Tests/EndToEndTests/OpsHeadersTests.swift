import FakeOllama
import Testing
import Tollgate

/// Headers Tollgate adds to every answer: HSTS on TLS only (proxied, errors, health), CORS credentials only for
/// named origins; and dot-segment paths refused before anything reaches Ollama.
@Suite struct OpsHeadersTests {
    static let alice = Credential.basic("alice", "pw-a")
    static let named = "https://chat.example.com"

    static func withUsers(configure: @escaping (inout ServerConfig) -> Void = { _ in },
                          body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            configure(&config)
        }, body: body)
    }

    /// Requests answered by Ollama, by Tollgate's error path, and by Tollgate's health path.
    static let requests = [
        Req.get("/api/version", alice),
        Req.generate(alice),
        Req.get("/api/tags"),
        Req.get("/api/nope", alice),
        Req.get("/healthz"),
        Req.get("/readyz"),
    ]

    @Test func hstsIsOnEveryTLSResponse() throws {
        try Self.withUsers(configure: { $0.hsts = "max-age=31536000; includeSubDomains" }) { proxy, _ in
            for request in Self.requests {
                let response = try proxy.fetch(request)
                #expect(response.head.header("Strict-Transport-Security") == "max-age=31536000; includeSubDomains",
                        "\(response.status) \(request.prefix(30))")
                #expect(response.head.count("Strict-Transport-Security") == 1)
            }
            // A refused head (bad framing) too.
            let refused = try proxy.fetch("GET /api/version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            #expect(refused.status == 400)
            #expect(refused.head.header("Strict-Transport-Security") != nil)
        }
    }

    @Test func hstsIsNeverOnPlainListeners() throws {
        try Self.withUsers { proxy, _ in
            for request in Self.requests {
                let client = try proxy.plain()
                defer { client.close() }
                let response = try client.exchange(request)
                #expect(response.status != 0)
                #expect(response.head.header("Strict-Transport-Security") == nil, "\(response.status) \(request.prefix(30))")
            }
            let client = try proxy.plain()
            defer { client.close() }
            let refused = try client.exchange("GET /api/version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            #expect(refused.status == 400)
            #expect(refused.head.header("Strict-Transport-Security") == nil)
        }
    }

    @Test func hstsOffLeavesItOut() throws {
        try Self.withUsers(configure: { $0.hsts = nil }) { proxy, _ in
            let proxied = try proxy.fetch(Req.get("/api/version", Self.alice))
            let health = try proxy.fetch(Req.get("/healthz"))
            #expect(proxied.status == 200 && health.status == 200)
            #expect(proxied.head.header("Strict-Transport-Security") == nil)
            #expect(health.head.header("Strict-Transport-Security") == nil)
        }
    }

    static func preflight(_ origin: String) -> String {
        Req.get("/api/chat", "Origin: \(origin)\r\nAccess-Control-Request-Method: POST\r\n"
                + "Access-Control-Request-Headers: authorization, content-type\r\n", method: "OPTIONS")
    }

    @Test func aWildcardOriginNeverGetsCredentials() throws {
        try Self.withUsers(configure: { $0.corsOrigins = ["*"] }) { proxy, fake in
            let origin = "https://anyone.example"
            let preflight = try proxy.fetch(Self.preflight(origin))
            #expect(preflight.status == 204)
            #expect(preflight.head.header("Access-Control-Allow-Origin") == origin)
            #expect(preflight.head.header("Access-Control-Allow-Credentials") == nil)
            let proxied = try proxy.fetch(Req.get("/api/tags", "Origin: \(origin)\r\n" + Self.alice))
            #expect(proxied.status == 200)
            #expect(proxied.head.header("Access-Control-Allow-Origin") == origin)
            #expect(proxied.head.header("Access-Control-Allow-Credentials") == nil)
            let refused = try proxy.fetch(Req.get("/api/tags", "Origin: \(origin)\r\n"))
            #expect(refused.status == 401)
            #expect(refused.head.header("Access-Control-Allow-Credentials") == nil)
            #expect(fake.requests.allSatisfy { $0.header("Origin") == nil })
        }
    }

    @Test func aNamedOriginGetsCredentialsOnThePreflight() throws {
        try Self.withUsers(configure: { $0.corsOrigins = [Self.named, "*"] }) { proxy, _ in
            let preflight = try proxy.fetch(Self.preflight(Self.named))
            #expect(preflight.status == 204)
            #expect(preflight.head.header("Access-Control-Allow-Origin") == Self.named)
            #expect(preflight.head.header("Access-Control-Allow-Credentials") == "true")
            #expect(preflight.head.header("Vary")?.contains("Origin") == true)
            // Beside the wildcard, an unnamed origin still gets none.
            let other = try proxy.fetch(Self.preflight("https://other.example"))
            #expect(other.status == 204)
            #expect(other.head.header("Access-Control-Allow-Credentials") == nil)
        }
    }

    /// A browser that sends credentials (`credentials: "include"`) checks Access-Control-Allow-Credentials on the
    /// actual response too (Fetch standard, CORS check): the preflight's "true" is useless without it.
    @Test func aNamedOriginGetsCredentialsOnActualResponses() throws {
        try Self.withUsers(configure: { $0.corsOrigins = [Self.named] }) { proxy, _ in
            let cors = "Origin: \(Self.named)\r\n"
            let proxied = try proxy.fetch(Req.get("/api/tags", cors + Self.alice))
            #expect(proxied.status == 200)
            #expect(proxied.head.header("Access-Control-Allow-Origin") == Self.named)
            #expect(proxied.head.header("Access-Control-Allow-Credentials") == "true")
            let refused = try proxy.fetch(Req.get("/api/tags", cors))
            #expect(refused.status == 401)
            #expect(refused.head.header("Access-Control-Allow-Credentials") == "true")
        }
    }

    @Test(arguments: ["/api/./tags", "/api/../api/tags", "/api/%2e/tags", "/api/%2E%2E/api/tags", "/api/.%2e/api/tags",
                      "/v1/./models", "/api/tags/.", "/api/tags/..", "/./api/version"])
    func dotSegmentPathsAre400WithNothingUpstream(_ path: String) throws {
        try Self.withUsers { proxy, fake in
            let response = try proxy.fetch(Req.get(path, Self.alice))
            #expect(response.status == 400, "\(path): \(response.status) \(response.text)")
            #expect(jsonObject(response)?["error"] != nil, "\(response.text)")
            #expect(fake.requests.isEmpty, "\(path) reached the upstream")
        }
    }

    @Test(arguments: ["/api/tags...", "/api/.hidden", "/api/%2e%2e%2e/x"])
    func dotsInsideANameAreNotSegments(_ path: String) throws {
        try Self.withUsers { proxy, _ in
            // Not a dot segment: whatever the route policy says, it is not the 400 for one.
            let response = try proxy.fetch(Req.get(path, Self.alice))
            #expect(response.status != 400, "\(path): \(response.text)")
        }
    }
}
