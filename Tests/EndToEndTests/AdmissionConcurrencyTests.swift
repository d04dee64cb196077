import FakeOllama
import Testing
import Tollgate

/// Inference concurrency through the running proxy: per-user and global in-flight limits, the bounded FIFO wait
/// queue, its timeout, and slots and places given back when a client leaves. fake-ollama's step mode holds streams
/// open, so "in flight" lasts exactly as long as the test says.
@Suite struct AdmissionConcurrencyTests {
    static let alice = Credential.basic("alice", "pw-a")
    static let bob = Credential.apiKey("bob", "pw-b")
    /// fake-ollama streams `tokens` lines and a final one.
    static let tokens = 5

    static func withLimitedProxy(perUser: Int, global: Int, queue: Int, queueTimeoutMillis: UInt64 = 30_000,
                                 retryAfter: Int = 5, body: (Proxy, FakeOllamaServer, ConcurrencyLimiter) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n")
        var settings = ConcurrencyLimiter.Settings()
        settings.perUser = perUser
        settings.global = global
        settings.queueLimit = queue
        settings.queueTimeoutMillis = queueTimeoutMillis
        settings.retryAfterSeconds = retryAfter
        try withProxyAndFake(tokens: tokens, configure: { config in
            config.users = users
            config.concurrency = settings
            config.authSettings = Authenticator.Settings(workers: 2)
        }) { proxy, fake in
            fake.stepMode = true
            // Whatever happens, let held streams go before the harness stops the servers.
            defer { fake.stepMode = false }
            try body(proxy, fake, try #require(proxy.server.concurrency))
        }
    }

    /// Starts a held stream: the request has reached Ollama and holds a slot.
    static func startHeldStream(_ proxy: Proxy, _ fake: FakeOllamaServer, _ limiter: ConcurrencyLimiter,
                                credentials: String = alice, upstreamCount: Int = 1) throws -> HTTPClient {
        let client = try proxy.tls()
        try client.send(Req.generate(credentials))
        try #require(fake.waitForRequests(upstreamCount, timeoutSeconds: eventTimeout), "the stream never reached Ollama")
        return client
    }

    @Test func overTheLimitWaitsThenIsAdmittedAndAFullQueueIsRefusedAtOnce() throws {
        try Self.withLimitedProxy(perUser: 1, global: 1, queue: 1) { proxy, fake, limiter in
            let first = try Self.startHeldStream(proxy, fake, limiter)
            defer { first.close() }
            #expect(limiter.inFlight == 1)

            let second = try proxy.tls()
            defer { second.close() }
            try second.send(Req.generate(Self.alice))
            #expect(waitUntil { limiter.queued == 1 }, "the second request did not queue")
            #expect(fake.requests.count == 1, "the second request reached Ollama while the first held the slot")

            // Queue full: refused at once, by another user too (the global limit and queue are shared).
            let third = try proxy.fetch(Req.generate(Self.bob))
            expectError(third, status: 429, family: .ollama)
            #expect(retryAfterSeconds(third) == 5)
            let openAI = try proxy.fetch(Req.post("/v1/chat/completions",
                                                  #"{"model":"mistral:7b","messages":[{"role":"user","content":"hi"}]}"#, Self.alice))
            expectError(openAI, status: 429, family: .openAI, openAICode: "rate_limit_exceeded")
            #expect(fake.requests.count == 1)
            // Read-only routes are not limited.
            #expect(try proxy.fetch(Req.get("/api/tags", Self.alice)).status == 200)
            #expect(limiter.queued == 1)

            // The first finishes; only then does the second reach Ollama.
            fake.allowLines(Self.tokens + 1)
            let firstResponse = try first.readResponse()
            #expect(firstResponse.status == 200)
            #expect(firstResponse.text.contains(#""done":true"#))
            #expect(fake.waitForRequests(3, timeoutSeconds: eventTimeout), "the queued request never reached Ollama")
            #expect(fake.requests.map(\.target) == ["/api/generate", "/api/tags", "/api/generate"])
            #expect(limiter.queued == 0)
            fake.allowLines(Self.tokens + 1)
            let secondResponse = try second.readResponse()
            #expect(secondResponse.status == 200)
            #expect(secondResponse.text.contains(#""done":true"#))
            #expect(waitUntil { limiter.inFlight == 0 })
        }
    }

    @Test func oneUsersLimitDoesNotHoldBackAnother() throws {
        try Self.withLimitedProxy(perUser: 1, global: 2, queue: 4) { proxy, fake, limiter in
            let aliceFirst = try Self.startHeldStream(proxy, fake, limiter)
            defer { aliceFirst.close() }
            let aliceSecond = try proxy.tls()
            defer { aliceSecond.close() }
            try aliceSecond.send(Req.generate(Self.alice))
            #expect(waitUntil { limiter.queued == 1 })
            // bob is under his own limit and the global one: straight through, past alice's waiting request.
            let bobStream = try Self.startHeldStream(proxy, fake, limiter, credentials: Self.bob, upstreamCount: 2)
            defer { bobStream.close() }
            #expect(limiter.inFlight(user: "alice") == 1)
            #expect(limiter.inFlight(user: "bob") == 1)
            #expect(limiter.queued == 1)
            #expect(fake.requests.count == 2)

            fake.stepMode = false
            #expect(try aliceFirst.readResponse().status == 200)
            #expect(try bobStream.readResponse().status == 200)
            #expect(try aliceSecond.readResponse().status == 200)
            #expect(fake.requests.count == 3)
            #expect(waitUntil { limiter.inFlight == 0 && limiter.queued == 0 })
        }
    }

    @Test func aWaitThatTimesOutGets429WithRetryAfter() throws {
        try Self.withLimitedProxy(perUser: 1, global: 1, queue: 4, queueTimeoutMillis: 50, retryAfter: 3) { proxy, fake, limiter in
            let first = try Self.startHeldStream(proxy, fake, limiter)
            defer { first.close() }
            // The reply comes when the wait expires (the read is bounded by the client's socket timeout).
            let waited = try proxy.fetch(Req.post("/v1/chat/completions",
                                                  #"{"model":"mistral:7b","messages":[{"role":"user","content":"hi"}]}"#, Self.bob))
            expectError(waited, status: 429, family: .openAI, openAICode: "rate_limit_exceeded")
            #expect(retryAfterSeconds(waited) == 3)
            #expect(limiter.queued == 0)
            #expect(limiter.inFlight == 1)
            #expect(fake.requests.count == 1)
            fake.allowLines(Self.tokens + 1)
            #expect(try first.readResponse().status == 200)
            #expect(waitUntil { limiter.inFlight == 0 })
        }
    }

    @Test func aClientThatLeavesTheQueueFreesItsPlace() throws {
        try Self.withLimitedProxy(perUser: 1, global: 1, queue: 1) { proxy, fake, limiter in
            let first = try Self.startHeldStream(proxy, fake, limiter)
            defer { first.close() }
            let quitter = try proxy.tls()
            try quitter.send(Req.generate(Self.alice))
            #expect(waitUntil { limiter.queued == 1 })
            quitter.close()
            #expect(waitUntil { limiter.queued == 0 }, "a disconnected client kept its place in the queue")

            // The place is free again: another request can wait in it.
            let next = try proxy.tls()
            defer { next.close() }
            try next.send(Req.generate(Self.bob))
            #expect(waitUntil { limiter.queued == 1 })

            fake.allowLines(100)
            #expect(try first.readResponse().status == 200)
            #expect(try next.readResponse().status == 200)
            // The quitter's request never reached Ollama.
            #expect(fake.requests.count == 2)
            #expect(waitUntil { limiter.inFlight == 0 && limiter.queued == 0 })
        }
    }

    @Test func aClientThatLeavesMidStreamFreesItsSlot() throws {
        try Self.withLimitedProxy(perUser: 1, global: 1, queue: 1) { proxy, fake, limiter in
            let streaming = try Self.startHeldStream(proxy, fake, limiter)
            fake.allowLines(1)
            let head = try streaming.readHead()
            #expect(head.status == 200)
            #expect(try streaming.readLine()?.contains(#""done":false"#) == true)
            // Someone is waiting for the slot.
            let waiting = try proxy.tls()
            defer { waiting.close() }
            try waiting.send(Req.generate(Self.bob))
            #expect(waitUntil { limiter.queued == 1 })

            streaming.close()
            #expect(fake.waitForCancellations(1, timeoutSeconds: eventTimeout), "Ollama's stream was not cancelled")
            // The slot went to the waiting request at once.
            #expect(fake.waitForRequests(2, timeoutSeconds: eventTimeout), "the waiting request never got the slot")
            #expect(limiter.queued == 0)
            #expect(limiter.inFlight(user: "alice") == 0)
            #expect(limiter.inFlight(user: "bob") == 1)
            fake.allowLines(100)
            #expect(try waiting.readResponse().status == 200)
            #expect(waitUntil { limiter.inFlight == 0 })
        }
    }
}
