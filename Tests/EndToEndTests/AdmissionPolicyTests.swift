import FakeOllama
import Testing
import Tollgate

/// Route policy and CORS through the running proxy: admin routes for admins only, account routes for nobody,
/// unknown paths 404 without reaching Ollama, preflights answered by Tollgate, `Origin` never forwarded.
@Suite struct AdmissionPolicyTests {
    static let alice = Credential.basic("alice", "pw-a")
    static let root = Credential.bearer("root", "pw-r")
    static let origin = "https://chat.example.com"

    /// alice (a user) and root (an admin), both {PLAIN}; CORS allows `origin`.
    static func withPolicyProxy(body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\nroot:{PLAIN}pw-r\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.admins = ["root"]
            config.corsOrigins = [origin]
            config.authSettings = Authenticator.Settings(workers: 2)
        }, body: body)
    }

    static let adminRequests = [
        Req.post("/api/pull", #"{"model":"evil/model","stream":false}"#),
        Req.post("/api/push", #"{"model":"mistral:7b","stream":false}"#),
        Req.post("/api/create", #"{"model":"x","from":"mistral:7b","stream":false}"#),
        Req.post("/api/copy", #"{"source":"mistral:7b","destination":"copy"}"#),
        Req.post("/api/delete", #"{"model":"mistral:7b"}"#, method: "DELETE"),
        Req.get("/api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000", method: "HEAD"),
        "POST /api/blobs/sha256:00 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nblob",
    ]

    @Test func adminRoutesAreRefusedForUsers() throws {
        try Self.withPolicyProxy { proxy, fake in
            for request in Self.adminRequests {
                let withCredentials = request.replacingFirst("Host: localhost\r\n", with: "Host: localhost\r\n" + Self.alice)
                let client = try proxy.tls()
                defer { client.close() }
                try client.send(withCredentials)
                let isHead = request.hasPrefix("HEAD")
                let response = try client.readResponse(requestWasHead: isHead)
                if isHead {
                    #expect(response.status == 403)
                } else {
                    expectError(response, status: 403, family: .ollama)
                }
            }
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test func adminRoutesAreForwardedForAnAdmin() throws {
        try Self.withPolicyProxy { proxy, fake in
            let pull = try proxy.fetch(Req.post("/api/pull", #"{"model":"mistral:7b","stream":false}"#, Self.root))
            #expect(pull.status == 200, "\(pull.text)")
            let delete = try proxy.fetch(Req.post("/api/delete", #"{"model":"other:1b"}"#, Self.root, method: "DELETE"))
            #expect(delete.status != 403)
            #expect(fake.requests.map(\.target) == ["/api/pull", "/api/delete"])
            #expect(fake.requests.allSatisfy { $0.header("Authorization") == nil })
        }
    }

    @Test func accountRoutesAreRefusedForEveryone() throws {
        try Self.withPolicyProxy { proxy, fake in
            let requests = [Req.get("/api/me"), Req.post("/api/me", "{}"), Req.post("/api/signout", "{}"),
                            Req.get("/api/user/keys"), Req.post("/api/user/keys/abc", "{}", method: "DELETE"),
                            Req.post("/api/experimental/web_search", #"{"query":"x"}"#)]
            for credentials in [Self.alice, Self.root] {
                for request in requests {
                    let response = try proxy.fetch(request.replacingFirst("Host: localhost\r\n", with: "Host: localhost\r\n" + credentials))
                    expectError(response, status: 403, family: .ollama)
                }
            }
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.root)
        }
    }

    @Test func unknownPathsAre404WithoutReachingTheUpstream() throws {
        try Self.withPolicyProxy { proxy, fake in
            expectError(try proxy.fetch(Req.get("/api/nope", Self.alice)), status: 404, family: .ollama)
            expectError(try proxy.fetch(Req.get("/admin", Self.root)), status: 404, family: .ollama)
            expectError(try proxy.fetch(Req.post("/api/generate/extra", "{}", Self.alice)), status: 404, family: .ollama)
            expectError(try proxy.fetch(Req.get("/v1/nope", Self.alice)), status: 404, family: .openAI, openAICode: "not_found")
            // Without credentials an unknown path is a 401 first: the proxy does not reveal what exists.
            #expect(try proxy.fetch(Req.get("/api/nope")).status == 401)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test func preflightFromAConfiguredOriginIsAnsweredWithoutAuthentication() throws {
        try Self.withPolicyProxy { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            let preflight = try client.exchange(Req.get("/api/chat", "Origin: \(Self.origin)\r\n"
                + "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n",
                method: "OPTIONS"))
            #expect(preflight.status == 204)
            #expect(preflight.head.header("Access-Control-Allow-Origin") == Self.origin)
            #expect(preflight.head.header("Access-Control-Allow-Methods")?.contains("POST") == true)
            #expect(preflight.head.header("Access-Control-Allow-Headers")?.lowercased().contains("authorization") == true)
            #expect(preflight.head.header("WWW-Authenticate") == nil)
            #expect(preflight.body.isEmpty)
            // The connection is still usable after the 204.
            #expect(try client.exchange(Req.get("/api/version", Self.alice)).status == 200)
            #expect(fake.requests.map(\.target) == ["/api/version"])
            #expect(try authStats(proxy).hashesComputed == 1)
        }
    }

    @Test func preflightFromAnotherOriginIs403() throws {
        try Self.withPolicyProxy { proxy, fake in
            let response = try proxy.fetch(Req.get("/api/chat", "Origin: https://evil.example\r\n"
                + "Access-Control-Request-Method: POST\r\n", method: "OPTIONS"))
            expectError(response, status: 403, family: .ollama)
            #expect(response.head.header("Access-Control-Allow-Origin") == nil)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func responsesToAnAllowedOriginCarryTheHeaderAndOriginNeverReachesOllama() throws {
        try Self.withPolicyProxy { proxy, fake in
            let cors = "Origin: \(Self.origin)\r\nReferer: \(Self.origin)/page\r\n"
            let proxied = try proxy.fetch(Req.get("/api/tags", cors + Self.alice))
            #expect(proxied.status == 200)
            #expect(proxied.head.header("Access-Control-Allow-Origin") == Self.origin)
            let chat = try proxy.fetch(Req.post("/api/chat", #"{"model":"mistral:7b","stream":false,"messages":[{"role":"user","content":"hi"}]}"#,
                                                cors + Self.alice))
            #expect(chat.status == 200)
            #expect(chat.head.header("Access-Control-Allow-Origin") == Self.origin)
            // Tollgate's own errors carry it too, so the browser can read the 401.
            let refused = try proxy.fetch(Req.get("/api/tags", cors))
            #expect(refused.status == 401)
            #expect(refused.head.header("Access-Control-Allow-Origin") == Self.origin)
            // A foreign origin's normal request gets no CORS header (the browser then hides the response).
            let foreign = try proxy.fetch(Req.get("/api/tags", "Origin: https://evil.example\r\n" + Self.alice))
            #expect(foreign.head.header("Access-Control-Allow-Origin") == nil)
            #expect(fake.requests.count == 3)
            for request in fake.requests {
                #expect(request.header("Origin") == nil, "Origin reached the upstream")
                #expect(request.header("Referer") == nil, "Referer reached the upstream")
            }
        }
    }
}

/// Spellings of admin and account routes a non-admin might try: none reaches Ollama.
@Suite struct AdmissionRouteSpellingTests {
    @Test(arguments: ["/API/PULL", "/Api/Pull", "/api/pull/", "//api/pull", "/api/%70ull", "/api/./pull",
                      "/api/pull;x", "/v1/../api/pull", "/api/pull?stream=false", "/api/pull#frag", "/api/ME", "/api/me/"])
    func aNonAdminCannotReachPullBySpellingItDifferently(_ path: String) throws {
        try AdmissionPolicyTests.withPolicyProxy { proxy, fake in
            let response = try proxy.fetch(Req.post(path, #"{"model":"evil/model"}"#, AdmissionPolicyTests.alice))
            #expect(response.status == 403 || response.status == 404 || response.status == 400, "\(path): \(response.status)")
            #expect(fake.requests.isEmpty, "\(path) reached the upstream as \(fake.requests.map(\.target))")
        }
    }
}

/// The optional per-user request rate, after authentication.
@Suite struct AdmissionUserRateTests {
    @Test func eachUserHasTheirOwnRate() throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.userRate = (rate: 0.001, burst: 2)
            config.authSettings = Authenticator.Settings(workers: 2)
        }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            var statuses: [Int] = []
            for _ in 0..<4 { statuses.append(try client.exchange(Req.get("/api/tags", AdmissionPolicyTests.alice)).status) }
            #expect(statuses == [200, 200, 200, 429])
            let refused = try client.exchange(Req.get("/v1/models", AdmissionPolicyTests.alice))
            expectError(refused, status: 429, family: .openAI, openAICode: "rate_limit_exceeded")
            #expect((retryAfterSeconds(refused) ?? 0) >= 1)
            #expect(refused.head.header("RateLimit-Policy")?.hasPrefix(#""user";q=2;"#) == true)
            // bob is not alice, even on the same connection from the same address.
            #expect(try client.exchange(Req.get("/api/tags", Credential.basic("bob", "pw-b"))).status == 200)
            // A wrong password is a 401, not a use of alice's rate.
            #expect(try client.exchange(Req.get("/api/tags", Credential.basic("alice", "nope"))).status == 401)
            #expect(fake.requests.count == 4)
        }
    }
}
