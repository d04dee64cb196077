import FakeOllama
import Synchronization
import Testing
import Tollgate
import TollgateIO

/// Token quotas through the running proxy over TLS: a user with `tokens-per-day=N` spends it and is refused with
/// 429 in the caller's API shape, `Retry-After` until UTC midnight and the quota's RateLimit headers; another user
/// goes on unaffected.
@Suite struct AccountsQuotaTests {
    static let alice = Credential.basic("alice", "pw-a")
    static let bob = Credential.basic("bob", "pw-b")
    /// 2026-12-04 23:00:00 UTC: an hour before the day's quota resets.
    static let lateEvening: Int64 = 1_796_425_200

    /// A proxy whose quota book reads a clock fixed at `lateEvening`, with alice and bob and `policies`.
    static func withQuotas(_ policies: [String], configure: (inout ServerConfig) -> Void = { _ in },
                           history: (any SpendingHistory)? = nil,
                           body: (Proxy, FakeOllamaServer, QuotaBook) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n")
        let table = try ServerConfig(resolved: ConfigResolver.resolve(flags: ["policy": policies], environment: [:],
                                                                       file: nil), cores: 1).policies
        let book = QuotaBook(clock: { AccountsQuotaTests.lateEvening })
        if let history { try book.seed(from: history) }
        let fake = try FakeOllamaHarness.start(tokens: 5)
        defer { fake.stop() }
        let certificates = TestCertificates.shared
        var config = ServerConfig()
        config.listen = [SocketAddress(parsing: "127.0.0.1:0")!]
        config.listenPlain = []
        config.certificatePath = certificates.certificatePath
        config.keyPath = certificates.keyPath
        config.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(fake.port)")!
        config.workers = 1
        config.accessLog = .none
        config.metricsListen = []
        config.rateLimit = nil
        config.users = users
        config.policies = table
        configure(&config)
        let server = try Server(config: config, quotaBook: book)
        server.start()
        defer { stop(server) }
        let proxy = Proxy(server: server, upstream: fake, tlsPort: server.tlsAddresses.first?.port ?? 0,
                          plainPort: nil, redirectPort: nil)
        try body(proxy, fake, book)
    }

    @Test func aUserSpendsTheDailyQuotaAndGets429WhileAnotherGoesOn() throws {
        try Self.withQuotas(["* tokens-per-day=100000", "alice tokens-per-day=350"]) { proxy, fake, book in
            var counted = 0
            var refused: Response?
            for _ in 0..<20 {
                let response = try proxy.fetch(Req.generate(Self.alice))
                if response.status == 429 {
                    refused = response
                    break
                }
                #expect(response.status == 200, "\(response.text)")
                let counts = try #require(finalOllamaCounts(response))
                counted += counts.prompt + counts.completion
            }
            let refusal = try #require(refused, "never refused")
            expectError(refusal, status: 429, family: .ollama)
            // What was charged is exactly what Ollama counted, and the next request's estimate (its 54-byte body + the
            // template allowance + one token to generate) no longer fits.
            #expect(book.balance(of: "alice").dayTokens == counted)
            #expect(counted <= 350 && 350 - counted < 54 + QuotaEstimate.templateOverhead + 1)
            #expect(retryAfterSeconds(refusal) == 3600)
            #expect(refusal.head.header("RateLimit-Policy") == "\"tokens-day\";q=350;w=86400")
            #expect(refusal.head.header("RateLimit") == "\"tokens-day\";r=\(350 - counted);t=3600")
            let reached = fake.requests.count
            // Bob is unaffected.
            let bobs = try proxy.fetch(Req.generate(Self.bob))
            #expect(bobs.status == 200, "\(bobs.text)")
            #expect(fake.requests.count == reached + 1)
            #expect(book.balance(of: "bob").dayRequests == 1)
        }
    }

    @Test func theRefusalIsInEachAPIsShapeAndNothingReachesOllama() throws {
        try Self.withQuotas(["alice tokens-per-day=10"]) { proxy, fake, _ in
            let generate = try proxy.fetch(Req.generate(Self.alice))
            expectError(generate, status: 429, family: .ollama)
            let chat = try proxy.fetch(Req.post("/v1/chat/completions",
                                                #"{"model":"mistral:7b","messages":[{"role":"user","content":"hi"}]}"#, Self.alice))
            expectError(chat, status: 429, family: .openAI, openAICode: "rate_limit_exceeded")
            let messages = try proxy.fetch(Req.post("/v1/messages",
                                                    #"{"model":"mistral:7b","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#,
                                                    Self.alice))
            expectError(messages, status: 429, family: .anthropic, anthropicType: "rate_limit_error")
            for response in [generate, chat, messages] {
                #expect(retryAfterSeconds(response) == 3600)
                #expect(response.head.header("RateLimit-Policy") == "\"tokens-day\";q=10;w=86400")
            }
            #expect(fake.requests.isEmpty)
        }
    }

    /// The ledger's stand-in: what alice spent before the restart.
    struct Ledger: SpendingHistory {
        func spent(sinceDay dayStart: Int64, sinceMonth monthStart: Int64) throws -> [String: Spending] {
            dayStart == 1_796_342_400 ? ["alice": Spending(dayTokens: 990, monthTokens: 990, dayRequests: 7)] : [:]
        }
    }

    @Test func aRestartSeededFromTheLedgerKeepsTheBalance() throws {
        try Self.withQuotas(["* tokens-per-day=1000"], history: Ledger()) { proxy, fake, book in
            let refused = try proxy.fetch(Req.generate(Self.alice))
            expectError(refused, status: 429, family: .ollama)
            #expect(refused.head.header("RateLimit") == "\"tokens-day\";r=10;t=3600")
            #expect(try proxy.fetch(Req.generate(Self.bob)).status == 200)
            #expect(fake.requests.count == 1)
            #expect(book.balance(of: "alice").dayRequests == 7)
        }
    }

    @Test func requestsPerDayCountsRequests() throws {
        try Self.withQuotas(["alice requests-per-day=2"]) { proxy, fake, _ in
            #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200)
            #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200)
            let third = try proxy.fetch(Req.generate(Self.alice))
            expectError(third, status: 429, family: .ollama)
            #expect(third.head.header("RateLimit-Policy") == "\"requests-day\";q=2;w=86400")
            #expect(try proxy.fetch(Req.generate(Self.bob)).status == 200)
            #expect(fake.requests.count == 3)
        }
    }
}

/// What the policy and the quota write into the body before it reaches Ollama, and the headers that say so.
@Suite struct AccountsQuotaCapTests {
    static let alice = AccountsQuotaTests.alice

    @Test func theQuotaLowersTheGenerationAndSaysSo() throws {
        // 400 tokens a day, a 54-byte body: 310 reserved for the prompt, 90 left to generate.
        try AccountsQuotaTests.withQuotas(["alice tokens-per-day=400"]) { proxy, fake, book in
            let response = try proxy.fetch(Req.generate(Self.alice))
            #expect(response.status == 200, "\(response.text)")
            #expect(#"{"model":"mistral:7b","prompt":"Why is the sky blue?"}"#.utf8.count == 54)
            #expect(response.head.header("X-Tollgate-Quota-Capped") == "num_predict=90")
            let sent = try #require(fake.requests.first.map { String(decoding: $0.body, as: UTF8.self) })
            #expect(sent.contains(#""num_predict":90"#), "\(sent)")
            #expect(book.balance(of: "alice").held == 0)
        }
    }

    @Test func aRequestAskingForLessKeepsItsValueAndIsNotCapped() throws {
        try AccountsQuotaTests.withQuotas(["alice tokens-per-day=400"]) { proxy, fake, book in
            let body = #"{"model":"mistral:7b","prompt":"hi","options":{"num_predict":3}}"#
            let response = try proxy.fetch(Req.post("/api/generate", body, Self.alice))
            #expect(response.status == 200, "\(response.text)")
            #expect(response.head.header("X-Tollgate-Quota-Capped") == nil)
            #expect(fake.requests.first.map { String(decoding: $0.body, as: UTF8.self) } == body)
            let counts = try #require(finalOllamaCounts(response))
            #expect(book.balance(of: "alice").dayTokens == counts.prompt + counts.completion)
        }
    }

    @Test func theStarLinesCapsApplyToEveryone() throws {
        try AccountsQuotaTests.withQuotas(["* max-context=2048 max-predict=16"]) { proxy, fake, _ in
            let body = #"{"model":"mistral:7b","prompt":"hi","options":{"num_ctx":8192}}"#
            let response = try proxy.fetch(Req.post("/api/generate", body, Self.alice))
            #expect(response.status == 200, "\(response.text)")
            #expect(response.head.header("X-Tollgate-Quota-Capped") == nil)
            let lowered = try #require(response.head.header("X-Tollgate-Lowered"))
            #expect(lowered.contains("num_ctx=2048") && lowered.contains("num_predict=16"), "\(lowered)")
        }
    }
}

/// A policy line's `models`, `rate` and `cloud-models` replace the global settings for its user only.
@Suite struct AccountsPolicyOverrideTests {
    static let alice = AccountsQuotaTests.alice
    static let bob = AccountsQuotaTests.bob

    @Test func aUsersModelsAndRateReplaceTheGlobalOnes() throws {
        try AccountsQuotaTests.withQuotas(["alice models=llama3 rate=0.001", "bob models=*"],
                                          configure: { $0.modelAllowlist = ["mistral:7b"]; $0.userBurst = 0 }) { proxy, fake, _ in
            // Alice may not use the globally allowed model, her own list applies.
            expectError(try proxy.fetch(Req.generate(Self.alice)), status: 403, family: .ollama)
            // Her rate: the first request passed, the next is refused with the user policy's headers.
            let limited = try proxy.fetch(Req.generate(Self.alice))
            expectError(limited, status: 429, family: .ollama)
            #expect(limited.head.header("RateLimit-Policy") == "\"user\";q=1;w=1")
            // Bob: any model, no per-user rate (none is set globally).
            for _ in 0..<3 {
                #expect(try proxy.fetch(Req.post("/api/generate", #"{"model":"mistral:7b","prompt":"x"}"#, Self.bob)).status == 200)
            }
            expectError(try proxy.fetch(Req.post("/api/generate", #"{"model":"qwen:cloud","prompt":"x"}"#, Self.bob)),
                        status: 403, family: .ollama)
        }
    }
}

/// `tollgate check-config` with policy lines: each line as it applies, or the bad line with its file and line.
@Suite struct AccountsPolicyCheckConfigTests {
    @Test func checkConfigPrintsTheEffectivePolicies() throws {
        let dir = try OpsTempDirectory()
        let users = dir.file("users.htpasswd")
        try "alice:{PLAIN}x\n".write(toFile: users, atomically: true, encoding: .utf8)
        let run = CLI.run(["check-config", "--listen-plain", "127.0.0.1:1", "--users", users, "--metrics-listen", "off",
                           "--policy", "* tokens-per-day=1000 max-predict=256",
                           "--policy", "alice tokens-per-day=off models=a,b"])
        #expect(run.status == 0, "\(run)")
        let text = run.stdout + run.stderr
        #expect(text.contains("policy * tokens-per-day=1000 max-predict=256"), "\(text)")
        #expect(text.contains("policy alice tokens-per-day=off models=a,b max-predict=256"), "\(text)")
    }

    @Test func aBadLineInTheFileIsNamedWithItsLine() throws {
        let dir = try OpsTempDirectory()
        let conf = dir.file("tollgate.conf")
        try "listen-plain = 127.0.0.1:1\nmetrics-listen = off\npolicy = * models=a,b\npolicy = bob tokens-per-day=many\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let run = CLI.run(["check-config", "--config", conf])
        #expect(run.status != 0, "\(run)")
        #expect(run.stderr.contains("\(conf):4: key \"policy\": tokens-per-day=many: expected an integer"), "\(run)")
    }
}
