import Dispatch
import FakeOllama
import Synchronization
import Testing
import Tollgate
import TollgateIO

/// Authentication through the running proxy over TLS: every credential style, 401s in each API family's shape,
/// credentials never forwarded, the verified-credential cache, single-flight checks, failed-login throttling,
/// overload and public paths.
@Suite struct AuthTests {
    static let realm = "Tollgate e2e"
    static let challenge = #"Basic realm="Tollgate e2e", charset="UTF-8""#

    /// A proxy whose users file holds alice (bcrypt cost 4, password "s3cret:with colon") and bob ({PLAIN} "hunter2").
    static func withAuthProxy(_ tweak: (inout ServerConfig) -> Void = { _ in },
                              body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("# e2e users\nalice:\(try TestUsers.bcrypt("s3cret:with colon"))\n\nbob:{PLAIN}hunter2\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.realm = realm
            config.authSettings = Authenticator.Settings(workers: 2)
            tweak(&config)
        }, body: body)
    }

    @Test func everyCredentialStyleIsAcceptedAndNoneReachesTheUpstream() throws {
        try Self.withAuthProxy { proxy, fake in
            let styles = [Credential.basic("alice", "s3cret:with colon"), Credential.bearer("alice", "s3cret:with colon"),
                          Credential.apiKey("alice", "s3cret:with colon"), Credential.basic("bob", "hunter2"),
                          Credential.bearer("bob", "hunter2"), Credential.apiKey("bob", "hunter2"),
                          // Scheme names are case-insensitive.
                          "authorization: bAsIc \(Data64.encode("bob:hunter2"))\r\n",
                          "Authorization: BEARER bob:hunter2\r\n"]
            for style in styles {
                let response = try proxy.fetch(Req.get("/api/tags", style))
                #expect(response.status == 200, "\(style): \(response.text)")
                #expect(response.head.header("WWW-Authenticate") == nil)
            }
            // A POST with a body too, on the OpenAI route an SDK would use.
            let chat = try proxy.fetch(Req.post("/v1/chat/completions",
                                                #"{"model":"mistral:7b","messages":[{"role":"user","content":"hi"}]}"#,
                                                Credential.bearer("alice", "s3cret:with colon")))
            #expect(chat.status == 200)
            let arrived = fake.requests
            #expect(arrived.count == styles.count + 1)
            for request in arrived {
                #expect(request.header("Authorization") == nil, "Authorization reached the upstream")
                #expect(request.header("x-api-key") == nil, "x-api-key reached the upstream")
            }
        }
    }

    @Test func missingCredentialsGet401InEachFamilysShape() throws {
        try Self.withAuthProxy { proxy, fake in
            let tags = try proxy.fetch(Req.get("/api/tags"))
            expectError(tags, status: 401, family: .ollama)
            #expect(tags.head.header("WWW-Authenticate") == Self.challenge)
            #expect(tags.head.count("WWW-Authenticate") == 1)

            let models = try proxy.fetch(Req.get("/v1/models"))
            expectError(models, status: 401, family: .openAI, openAICode: "invalid_api_key")
            #expect(models.head.header("WWW-Authenticate") == Self.challenge)

            let messages = try proxy.fetch(Req.post("/v1/messages",
                                                    #"{"model":"mistral:7b","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#))
            expectError(messages, status: 401, family: .anthropic, anthropicType: "authentication_error")
            #expect(messages.head.header("WWW-Authenticate") == Self.challenge)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test(arguments: [
        "Authorization: Basic !!!not-base64!!!\r\n",
        "Authorization: Basic\r\n",
        "Authorization: Basic \(Data64.encode("no-colon-here"))\r\n",
        "Authorization: Basic \(Data64.encode(":empty-user"))\r\n",
        "Authorization: Bearer\r\n",
        "Authorization: Bearer token-without-colon\r\n",
        "Authorization: Digest username=\"alice\", realm=\"x\"\r\n",
        "Authorization: Negotiate YIIB\r\n",
        "Authorization: \r\n",
        "x-api-key: \r\n",
        "x-api-key: sk-ant-no-colon\r\n",
    ])
    func malformedOrUnknownSchemeGets401(_ header: String) throws {
        try Self.withAuthProxy { proxy, fake in
            let response = try proxy.fetch(Req.get("/api/tags", header))
            expectError(response, status: 401, family: .ollama)
            #expect(response.head.header("WWW-Authenticate") == Self.challenge)
            #expect(fake.requests.isEmpty)
            // A malformed header is refused without a password check.
            #expect(try authStats(proxy).hashesComputed == 0)
        }
    }

    @Test func unknownUserAndWrongPasswordLookTheSame() throws {
        try Self.withAuthProxy({ $0.authSettings.failureLimit = 0 }) { proxy, fake in
            for path in ["/api/tags", "/v1/models"] {
                let wrong = try proxy.fetch(Req.get(path, Credential.basic("alice", "wrong")))
                let unknown = try proxy.fetch(Req.get(path, Credential.basic("mallory", "wrong")))
                #expect(wrong.status == 401)
                #expect(unknown.status == wrong.status)
                #expect(unknown.body == wrong.body)
                func fields(_ r: Response) -> [String] {
                    r.head.headers.filter { $0.name.lowercased() != "x-request-id" }.map { "\($0.name): \($0.value)" }
                }
                #expect(fields(unknown) == fields(wrong))
            }
            // The unknown user cost a (dummy) check like the wrong password did.
            let stats = try authStats(proxy)
            #expect(stats.dummyVerifications == 1)
            #expect(stats.hashesComputed == 2)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func aReturningClientIsACacheHit() throws {
        try Self.withAuthProxy { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            for _ in 0..<20 {
                #expect(try client.exchange(Req.get("/api/tags", Credential.basic("alice", "s3cret:with colon"))).status == 200)
            }
            // Other connections and other header styles share the verdict: same user, same password.
            #expect(try proxy.fetch(Req.get("/api/tags", Credential.apiKey("alice", "s3cret:with colon"))).status == 200)
            let stats = try authStats(proxy)
            // One hash in all. The first connection remembers its verified login, so its 19 repeats never reach the
            // authenticator; the other connection is answered from the verified-credential cache.
            #expect(stats.hashesComputed == 1)
            #expect(stats.cacheHits == 1)
            #expect(stats.allowed == 2)
        }
    }

    @Test func aRepeatedWrongPasswordIsCachedToo() throws {
        try Self.withAuthProxy({ $0.authSettings.failureLimit = 0 }) { proxy, fake in
            let client = try proxy.tls()
            defer { client.close() }
            for _ in 0..<20 {
                let response = try client.exchange(Req.get("/api/tags", Credential.basic("alice", "guess")))
                #expect(response.status == 401)
                #expect(response.head.header("WWW-Authenticate") == Self.challenge)
            }
            let stats = try authStats(proxy)
            #expect(stats.hashesComputed == 1)
            #expect(stats.cacheHits == 19)
            #expect(stats.denied == 20)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func concurrentIdenticalChecksCollapseIntoOne() throws {
        // Cost 10 (~50 ms here) so the first check is still running while the others arrive.
        let hash = try #require(PasswordCrypt.bcrypt(password: Array("fresh-pw".utf8), cost: 10))
        let users = try TestUsers.parse("carol:\(hash)\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.authSettings = Authenticator.Settings(workers: 2)
        }) { proxy, fake in
            let count = 16
            // Handshakes first, then every request at once.
            let clients = try (0..<count).map { _ in try proxy.tls() }
            defer { clients.forEach { $0.close() } }
            let request = Req.get("/api/tags", Credential.basic("carol", "fresh-pw"))
            let statuses = Mutex<[Int]>([])
            let boxed = UncheckedClients(clients)
            DispatchQueue.concurrentPerform(iterations: count) { i in
                let status = (try? boxed.clients[i].exchange(request).status) ?? -1
                statuses.withLock { $0.append(status) }
            }
            #expect(statuses.withLock { $0 } == Array(repeating: 200, count: count))
            let stats = try authStats(proxy)
            #expect(stats.hashesComputed == 1)
            #expect(stats.collapsed + stats.cacheHits == count - 1)
            #expect(stats.allowed == count)
            #expect(fake.requests.count == count)
        }
    }

    @Test func repeatedFailuresForOneUserFromOneAddressAreThrottledWithoutChecking() throws {
        try Self.withAuthProxy({ $0.authSettings.failureLimit = 3; $0.authSettings.failureWindowSeconds = 60 }) { proxy, fake in
            for guess in ["guess1", "guess2", "guess3"] {
                #expect(try proxy.fetch(Req.get("/api/tags", Credential.basic("alice", guess))).status == 401)
            }
            let before = try authStats(proxy).hashesComputed
            #expect(before == 3)
            // Now even alice's right password (never verified) is not checked: 429 with Retry-After, in each
            // family's shape.
            let throttled = try proxy.fetch(Req.get("/api/tags", Credential.basic("alice", "s3cret:with colon")))
            expectError(throttled, status: 429, family: .ollama)
            let seconds = try #require(retryAfterSeconds(throttled), "Retry-After: \(throttled.head.header("Retry-After") ?? "none")")
            #expect(seconds >= 1 && seconds <= 60)
            let openAI = try proxy.fetch(Req.get("/v1/models", Credential.bearer("alice", "s3cret:with colon")))
            expectError(openAI, status: 429, family: .openAI, openAICode: "rate_limit_exceeded")
            #expect(retryAfterSeconds(openAI) != nil)
            let stats = try authStats(proxy)
            #expect(stats.hashesComputed == before)
            #expect(stats.throttled == 2)
            #expect(fake.requests.isEmpty)
            // bob, from the same address, is not locked out by failures for alice.
            #expect(try proxy.fetch(Req.get("/v1/models", Credential.bearer("bob", "hunter2"))).status == 200)
        }
    }

    /// Behind a trusted load balancer the client is the X-Forwarded-For address, and failed-login
    /// throttling is per client IP: one attacker's guesses must not lock out every other client that
    /// comes through the same balancer.
    @Test func throttlingBehindATrustedProxyIsPerForwardedClient() throws {
        try Self.withAuthProxy({ config in
            config.authSettings.failureLimit = 2
            config.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
        }) { proxy, _ in
            let attacker = "X-Forwarded-For: 203.0.113.7\r\n"
            for guess in ["guess1", "guess2"] {
                #expect(try proxy.fetch(Req.get("/api/tags", attacker + Credential.basic("alice", guess))).status == 401)
            }
            #expect(try proxy.fetch(Req.get("/api/tags", attacker + Credential.basic("alice", "guess3"))).status == 429)
            let victim = try proxy.fetch(Req.get("/api/tags", "X-Forwarded-For: 198.51.100.9\r\n" + Credential.basic("bob", "hunter2")))
            #expect(victim.status == 200, "another client behind the same proxy was throttled: \(victim.text)")
        }
    }

    @Test func aFullCheckQueueAnswers503WithRetryAfter() throws {
        try Self.withAuthProxy({ $0.authSettings.queueLimit = 0 }) { proxy, fake in
            let response = try proxy.fetch(Req.get("/api/tags", Credential.basic("bob", "hunter2")))
            expectError(response, status: 503, family: .ollama)
            #expect(retryAfterSeconds(response) == 1)
            let anthropic = try proxy.fetch(Req.post("/v1/messages", #"{"model":"mistral:7b","max_tokens":8,"messages":[]}"#,
                                                     Credential.apiKey("bob", "hunter2")))
            expectError(anthropic, status: 503, family: .anthropic, anthropicType: "overloaded_error")
            #expect(try authStats(proxy).overloaded == 2)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func publicPathsSkipAuthentication() throws {
        try Self.withAuthProxy({ $0.publicPaths = ["/api/version"] }) { proxy, fake in
            let version = try proxy.fetch(Req.get("/api/version"))
            #expect(version.status == 200)
            #expect(version.text.contains("version"))
            // Even bad credentials do not matter there; everything else still needs them.
            #expect(try proxy.fetch(Req.get("/api/version", "Authorization: Digest nope\r\n")).status == 200)
            #expect(try proxy.fetch(Req.get("/api/tags")).status == 401)
            #expect(try proxy.fetch(Req.get("/api/version/x")).status == 401)
            #expect(fake.requests.map(\.target) == ["/api/version", "/api/version"])
            #expect(fake.requests.allSatisfy { $0.header("Authorization") == nil })
            #expect(try authStats(proxy).hashesComputed == 0)
        }
    }
}
