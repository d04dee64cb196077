import FakeOllama
import Testing
import Tollgate
import TollgateIO

/// The request path an attacker probes: the path decided on is the path Ollama routes on; the model decided on is
/// every model Ollama reads from the body; cloud models are off; a slow body holds no slot; nothing of the
/// client's cookies or forwarding claims reaches Ollama.
@Suite struct HardeningRequestPathTests {
    static let alice = Credential.basic("alice", "pw-a")
    static let root = Credential.bearer("root", "pw-r")

    /// alice (a user) and root (an admin); `configure` adds to that.
    static func withUsers(_ configure: @escaping (inout ServerConfig) -> Void = { _ in },
                          body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\nroot:{PLAIN}pw-r\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.admins = ["root"]
            config.authSettings = Authenticator.Settings(workers: 2)
            configure(&config)
        }, body: body)
    }

    static func raw(_ method: String, _ target: String, _ body: String = #"{"model":"mistral:7b"}"#,
                    credentials: String = alice) -> String {
        "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\n\(credentials)Content-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    @Test(arguments: ["/%61pi/pull", "/api/p%75ll", "/%61%70%69/%70%75%6c%6c", "http://localhost/%61pi/pull",
                      "HTTP://x/api/pul%6C"])
    func encodedAdminRoutesAreDecidedAsTheAdminRoutesOllamaSees(_ target: String) throws {
        try Self.withUsers { proxy, _ in
            let response = try proxy.fetch(Self.raw("POST", target))
            expectError(response, status: 403, family: .ollama)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test(arguments: ["/api%2Fpull", "/api%2fpull", "http://%2Fapi%2Fpull/api%2Fpull", "/api/chat%00", "/api/chat%",
                      "/api/chat%zz", "/api/chat#frag"])
    func ambiguousTargetsAreRefusedWithNothingForwarded(_ target: String) throws {
        try Self.withUsers { proxy, _ in
            let response = try proxy.fetch(Self.raw("POST", target))
            #expect(response.status == 400)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test func anAbsoluteFormTargetWithNoPathIsForwardedAsTheRootOnly() throws {
        try Self.withUsers { proxy, fake in
            for target in ["http://host%2Fapi%2Fpull", "http://%2Fapi%2Fpull", "http://%2Fapi%2Fpull?x=1"] {
                let response = try proxy.fetch(Self.raw("GET", target, ""))
                #expect(response.status == 200, "\(target): \(response.text)")
            }
            #expect(fake.requests.map(\.target) == ["/", "/", "/?x=1"])
        }
    }

    @Test func encodedInferenceRoutesReachOllamaAsThePathItRoutesOn() throws {
        try Self.withUsers { proxy, fake in
            let response = try proxy.fetch(Self.raw("POST", "/%61pi/chat", #"{"model":"mistral:7b","stream":false}"#))
            #expect(response.status == 200, "\(response.text)")
            #expect(fake.requests.map(\.target) == ["/api/chat"])
        }
    }

    @Test func routesAreCaseSensitiveAsGinsAre() throws {
        try Self.withUsers { proxy, _ in
            expectError(try proxy.fetch(Self.raw("POST", "/API/PULL")), status: 404, family: .ollama)
            expectError(try proxy.fetch(Self.raw("POST", "/Api/Chat")), status: 404, family: .ollama)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    // MARK: the model Ollama acts on

    @Test(arguments: [
        ("/api/chat", #"{"model":"gpt-oss:120b-cloud","stream":false}"#, APIFamily.ollama),
        ("/api/generate", #"{"MODEL":"x:cloud","stream":false}"#, .ollama),
        ("/v1/chat/completions", #"{"model":"deepseek-v3.1:671b-cloud","messages":[]}"#, .openAI),
        ("/v1/messages", #"{"model":"x:cloud","max_tokens":1,"messages":[]}"#, .anthropic),
        // The cloud middleware reads the exact key, the handler the last case-folded one: either is enough.
        ("/v1/chat/completions", #"{"model":"x:cloud","Model":"mistral:7b","messages":[]}"#, .openAI),
        ("/v1/chat/completions", #"{"model":"mistral:7b","Model":"x:cloud","messages":[]}"#, .openAI),
    ])
    func cloudModelsAreRefusedByDefault(_ path: String, _ body: String, _ family: APIFamily) throws {
        try Self.withUsers { proxy, _ in
            expectError(try proxy.fetch(Self.raw("POST", path, body)), status: 403, family: family)
            // An administrator is refused too unless cloud-models says otherwise.
            expectError(try proxy.fetch(Self.raw("POST", path, body, credentials: Self.root)), status: 403, family: family)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test(arguments: ["/v1/models/x:cloud", "/v1/models/x%3Acloud", "/v1/models/gpt-oss:120b-cloud", "/v1/models/x:%20cloud"])
    func cloudModelsNamedInThePathAreRefusedToo(_ target: String) throws {
        try Self.withUsers { proxy, _ in
            expectError(try proxy.fetch(Req.get(target, Self.alice)), status: 403, family: .openAI)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test(arguments: ["/v1/chat/completions", "/api/chat", "/api/show"])
    func encodedBodiesAreRefusedWhereTheModelIsRead(_ path: String) throws {
        try Self.withUsers { proxy, _ in
            let request = Self.raw("POST", path).replacingFirst("Content-Type", with: "Content-Encoding: zstd\r\nContent-Type")
            let response = try proxy.fetch(request)
            #expect(response.status == 415)
            let identity = Self.raw("POST", path, #"{"model":"mistral:7b","stream":false,"messages":[]}"#)
                .replacingFirst("Content-Type", with: "Content-Encoding: identity\r\nContent-Type")
            #expect(try proxy.fetch(identity).status == 200)
        }
    }

    @Test func cloudModelsForAdminsOnlyWhenSoConfigured() throws {
        try Self.withUsers({ $0.cloudModels = .admins }) { proxy, fake in
            let body = #"{"model":"x:cloud","stream":false}"#
            expectError(try proxy.fetch(Self.raw("POST", "/api/chat", body)), status: 403, family: .ollama)
            #expect(try proxy.fetch(Self.raw("POST", "/api/chat", body, credentials: Self.root)).status != 403)
            #expect(fake.requests.count == 1)
        }
    }

    @Test func everyReadingMustBeOnTheAllowList() throws {
        try Self.withUsers({ $0.modelAllowlist = ["mistral:7b"] }) { proxy, fake in
            for body in [#"{"model":"mistral:7b","Model":"llama3:70b","messages":[]}"#,
                         #"{"Model":"mistral:7b","model":"llama3:70b","messages":[]}"#,
                         #"{"model":"mistral:7b","mod\u0065l":"llama3:70b","messages":[]}"#] {
                expectError(try proxy.fetch(Self.raw("POST", "/v1/chat/completions", body)), status: 403, family: .openAI)
            }
            let nested = #"{"options":{"model":"mistral:7b"},"model":"llama3:70b","stream":false}"#
            expectError(try proxy.fetch(Self.raw("POST", "/api/generate", nested)), status: 403, family: .ollama)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
            let fine = try proxy.fetch(Self.raw("POST", "/api/generate", #"{"model":"mistral:7b","stream":false}"#))
            #expect(fine.status == 200)
            #expect(fake.requests.last?.target == "/api/generate")
        }
    }

    @Test func bytesAfterTheObjectAreRefusedAtOnceNotHeld() throws {
        try Self.withUsers({ $0.modelAllowlist = ["mistral:7b"] }) { proxy, _ in
            let body = #"{"model":"mistral:7b","stream":false}"# + String(repeating: " x", count: 5000)
            expectError(try proxy.fetch(Self.raw("POST", "/api/generate", body)), status: 400, family: .ollama)
            try proxy.expectOnlySentinelArrived(after: 0, credentials: Self.alice)
        }
    }

    @Test func theLogAndTheUpstreamSeeTheHandlersModelNotANestedOne() throws {
        try Self.withUsers { proxy, fake in
            let body = #"{"messages":[{"model":"forged\nline"}],"model":"mistral:7b","stream":false}"#
            let response = try proxy.fetch(Self.raw("POST", "/api/chat", body))
            #expect(response.status == 200)
            #expect(fake.requests.first?.body == bytes(body))
        }
    }

    // MARK: bodies and slots

    @Test func aTrickledInferenceBodyHoldsNoSlot() throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\nroot:{PLAIN}pw-r\n")
        var settings = ConcurrencyLimiter.Settings()
        settings.perUser = 1
        settings.global = 1
        try withProxyAndFake(configure: { config in
            config.users = users
            config.concurrency = settings
            config.authSettings = Authenticator.Settings(workers: 2)
        }) { proxy, fake in
            let limiter = try #require(proxy.server.concurrency)
            let slow = try proxy.tls()
            defer { slow.close() }
            // Head and the start of the body, then nothing: nginx's buffered request body, in effect.
            try slow.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Content-Length: 100\r\n\r\n"
                + #"{"model":"mistral:7b","#)
            // Another user's complete request is served while the slow body is pending.
            let response = try proxy.fetch(Self.raw("POST", "/api/generate", #"{"model":"mistral:7b","stream":false}"#,
                                                    credentials: Self.root))
            #expect(response.status == 200)
            #expect(limiter.inFlight == 0)
            #expect(fake.requests.count == 1)
        }
    }

    @Test func aChunkedInferenceBodyIsReadWholeThenSentAsOneChunk() throws {
        try Self.withUsers { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Transfer-Encoding: chunked\r\n\r\n"
                + "5;ext=1\r\n{\"mod\r\n20\r\nel\":\"mistral:7b\",\"stream\":false}\r\n0\r\nX-Trailer: t\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            let seen = try #require(fake.requests.first)
            #expect(seen.body == bytes(#"{"model":"mistral:7b","stream":false}"#))
            #expect(seen.header("Transfer-Encoding") == "chunked")
        }
    }

    @Test func cookiesAndForwardingClaimsNeverReachOllama() throws {
        try Self.withUsers { proxy, fake in
            let request = Req.get("/api/tags", Self.alice + "Cookie: session=secret\r\nX-Real-IP: 6.6.6.6\r\n"
                                  + "Forwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil\r\n")
            #expect(try proxy.fetch(request).status == 200)
            let seen = try #require(fake.requests.first)
            for name in ["Cookie", "X-Real-IP", "Forwarded", "X-Forwarded-Host"] { #expect(seen.header(name) == nil, "\(name)") }
        }
    }

    @Test func bodiesBeingReadWholeShareABoundedBudgetHalfPerUser() throws {
        try Self.withUsers({ config in
            config.workers = 1
            config.bodyLimits.inference = 1000
            config.maxBodyBuffered = 2000
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, fake in
            let slow = try proxy.tls()
            defer { slow.close() }
            let body = #"{"model":"mistral:7b","prompt":""# + String(repeating: "a", count: 600)
            try slow.send("POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)Content-Length: 1000\r\n\r\n" + body)
            // Her password is checked off the loop: the body counts once the check is done and what has come of it
            // is held.
            let buffered = "tollgate_request_body_buffered_bytes"
            #expect(waitUntil { (try? MetricsScrape(proxy))?[buffered] == Double(body.utf8.count) })
            // alice's slow body holds about 630 of her 1000 (half the worker's 2000): her next 1000-byte body does
            // not fit, while root's does.
            let big = #"{"model":"mistral:7b","stream":false,"prompt":""# + String(repeating: "b", count: 1000 - 49) + #""}"#
            #expect(big.utf8.count == 1000)
            let refused = try proxy.fetch(Self.raw("POST", "/api/generate", big))
            expectError(refused, status: 503, family: .ollama)
            #expect(refused.head.header("Retry-After") == "1")
            let other = try proxy.fetch(Self.raw("POST", "/api/generate", big, credentials: Self.root))
            #expect(other.status == 200)
            // Once the slow client goes, alice's share is free again.
            slow.close()
            #expect(waitUntil { (try? MetricsScrape(proxy))?[buffered] == 0 })
            #expect(try proxy.fetch(Self.raw("POST", "/api/generate", big)).status == 200)
            #expect(fake.requests.allSatisfy { $0.target == "/api/generate" })
        }
    }
}
