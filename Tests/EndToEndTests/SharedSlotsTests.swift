import FakeOllama
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

/// Inference slots as Redis leases: two in-process Tollgates share the per-user and global caps; the queue stays
/// local and is served when the other instance releases; a lease is given back on every way a request ends; while
/// Redis is down the local fallback limits at caps/N. fake-ollama's step mode holds streams open.
@Suite("Shared limits: inference slots as Redis leases", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedSlotsTests {
    static let alice = Credential.basic("alice", "pw-a")
    static let bob = Credential.apiKey("bob", "pw-b")
    static let tokens = 3

    static func configure(_ config: inout ServerConfig, redis: RedisServerProcess, perUser: Int, global: Int, queue: Int,
                          fleet: Int = 1, queueTimeoutMillis: UInt64 = 30_000,
                          fallback: SharedLimitsSettings.Fallback = .local) throws {
        config.users = try TestUsers.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n")
        // No failed-login throttle: with redis-fallback closed it would refuse before the slots are asked.
        config.authSettings = Authenticator.Settings(workers: 2, failureLimit: 0)
        var c = ConcurrencyLimiter.Settings()
        c.perUser = perUser
        c.global = global
        c.queueLimit = queue
        c.queueTimeoutMillis = queueTimeoutMillis
        config.concurrency = c
        config.sharedLimits = redis.sharedLimits(fleet: fleet, fallback: fallback)
    }

    /// Two proxies sharing `redis` and one fake Ollama in step mode.
    static func withTwo(redis: RedisServerProcess, perUser: Int, global: Int, queue: Int, queueTimeoutMillis: UInt64 = 30_000,
                        body: (Proxy, Proxy, FakeOllamaServer) throws -> Void) throws {
        try withTwoProxies(tokens: tokens, configure: {
            try configure(&$0, redis: redis, perUser: perUser, global: global, queue: queue,
                          queueTimeoutMillis: queueTimeoutMillis)
        }) { a, b, fake in
            fake.stepMode = true
            defer { fake.stepMode = false }
            try body(a, b, fake)
        }
    }

    /// Sends a streamed generate and waits until Ollama has `upstreamCount` requests.
    static func held(_ proxy: Proxy, _ fake: FakeOllamaServer, _ credentials: String, upstreamCount: Int) throws -> HTTPClient {
        let client = try proxy.tls()
        try client.send(Req.generate(credentials))
        try #require(fake.waitForRequests(upstreamCount, timeoutSeconds: eventTimeout), "the stream never reached Ollama")
        return client
    }

    @Test func theQueueIsServedWhenTheOtherInstanceReleases() throws {
        let redis = try RedisServerProcess()
        try Self.withTwo(redis: redis, perUser: 1, global: 1, queue: 2) { a, b, fake in
            let first = try Self.held(a, fake, Self.alice, upstreamCount: 1)
            defer { first.close() }
            #expect(try redis.leasesHeld() == 1)

            // Bob, on the other instance, waits: the global cap is fleet-wide.
            let second = try b.tls()
            defer { second.close() }
            try second.send(Req.generate(Self.bob))
            #expect(waitUntil { b.server.sharedQueued == 1 }, "bob did not queue on b")
            #expect(fake.requests.count == 1)

            // A third request on b finds the queue of 2 with room; a fourth does not.
            let third = try b.tls()
            defer { third.close() }
            try third.send(Req.generate(Self.alice))
            #expect(waitUntil { b.server.sharedQueued == 2 })
            let refused = try b.fetch(Req.generate(Self.alice))
            expectError(refused, status: 429, family: .ollama)

            // a's release is invisible to b except through Redis: b's periodic retry admits bob (head of queue).
            fake.allowLines(Self.tokens + 1)
            #expect(try first.readResponse().status == 200)
            #expect(fake.waitForRequests(2, timeoutSeconds: eventTimeout), "the queued request never reached Ollama")
            #expect(b.server.sharedQueued == 1)
            fake.allowLines(Self.tokens + 1)
            #expect(try second.readResponse().status == 200)
            #expect(fake.waitForRequests(3, timeoutSeconds: eventTimeout))
            fake.allowLines(Self.tokens + 1)
            #expect(try third.readResponse().status == 200)
            #expect(eventually { (try? redis.leasesHeld()) == 0 }, "a lease was not released")
        }
    }

    @Test func waitersAreServedFirstComeFirstServed() throws {
        let redis = try RedisServerProcess()
        try Self.withTwo(redis: redis, perUser: 2, global: 1, queue: 4) { a, b, fake in
            let holder = try Self.held(a, fake, Self.alice, upstreamCount: 1)
            defer { holder.close() }
            var waiting: [HTTPClient] = []
            defer { for c in waiting { c.close() } }
            for (i, who) in [Self.bob, Self.alice, Self.bob].enumerated() {
                let c = try b.tls()
                try c.send(Req.post("/api/generate", #"{"model":"mistral:7b","prompt":"p\#(i)"}"#, who))
                waiting.append(c)
                #expect(waitUntil { b.server.sharedQueued == i + 1 })
            }
            for i in 0..<3 {
                fake.allowLines(Self.tokens + 1)
                #expect(fake.waitForRequests(i + 2, timeoutSeconds: eventTimeout))
                let body = String(decoding: fake.requests[i + 1].body, as: UTF8.self)
                #expect(body.contains("\"p\(i)\""), "request \(i + 1) upstream was \(body)")
            }
            fake.allowLines(Self.tokens + 1)
            for c in waiting { #expect(try c.readResponse().status == 200) }
            #expect(eventually { (try? redis.leasesHeld()) == 0 })
        }
    }

    @Test func leasesComeBackOnEveryEnd() throws {
        let redis = try RedisServerProcess()
        try Self.withTwo(redis: redis, perUser: 1, global: 1, queue: 4) { a, b, fake in
            // Client gone mid-stream.
            let gone = try Self.held(a, fake, Self.alice, upstreamCount: 1)
            gone.close()
            #expect(eventually { (try? redis.leasesHeld()) == 0 }, "the lease of a vanished client was kept")

            // Client gone while queued: its place is given back, and it never takes a lease later.
            let holder = try Self.held(b, fake, Self.bob, upstreamCount: 2)
            let waiting = try a.tls()
            try waiting.send(Req.generate(Self.alice))
            #expect(waitUntil { a.server.sharedQueued == 1 })
            waiting.close()
            #expect(waitUntil { a.server.sharedQueued == 0 }, "the vanished waiter kept its place")

            // Done normally.
            fake.allowLines(Self.tokens + 1)
            #expect(try holder.readResponse().status == 200)
            holder.close()
            #expect(eventually { (try? redis.leasesHeld()) == 0 }, "a finished request kept its lease")
            #expect(fake.requests.count == 2)

            // A request refused before it reached Ollama (bad body) holds nothing either.
            let bad = try a.fetch(Req.post("/api/generate", "{", Self.alice))
            #expect(bad.status >= 400)
            // The release is sent once the response is out: the client can ask Redis before it lands.
            #expect(eventually { (try? redis.leasesHeld()) == 0 }, "a refused request kept its lease")
        }
    }

    @Test func aStoppingInstanceReleasesItsLeasesBeforeItExits() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(tokens: Self.tokens, configure: {
            try? Self.configure(&$0, redis: redis, perUser: 2, global: 2, queue: 2)
            $0.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, fake in
            fake.stepMode = true
            defer { fake.stepMode = false }
            let one = try Self.held(proxy, fake, Self.alice, upstreamCount: 1)
            defer { one.close() }
            let two = try Self.held(proxy, fake, Self.bob, upstreamCount: 2)
            defer { two.close() }
            #expect(try redis.leasesHeld() == 2)
            let scrape = try SharedRateLimitTests.metrics(proxy)
            #expect(scrape.contains("tollgate_inference_in_flight 2\n"), "\(scrape)")
            #expect(scrape.contains("tollgate_inference_queued 0\n"))
            // Grace 0: the streams are cut, and their releases still reach Redis before the loop exits.
            stop(proxy.server)
            #expect(try redis.leasesHeld() == 0)
        }
    }

    @Test func aWaiterTimesOutWith429() throws {
        let redis = try RedisServerProcess()
        try Self.withTwo(redis: redis, perUser: 1, global: 1, queue: 2, queueTimeoutMillis: 100) { a, b, fake in
            let holder = try Self.held(a, fake, Self.alice, upstreamCount: 1)
            defer { holder.close() }
            let late = try b.fetch(Req.generate(Self.bob))
            expectError(late, status: 429, family: .ollama)
            #expect(b.server.sharedQueued == 0)
            fake.allowLines(Self.tokens + 1)
            #expect(try holder.readResponse().status == 200)
        }
    }

    @Test func openAndClosedFallbacks() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(tokens: Self.tokens, configure: {
            try? Self.configure(&$0, redis: redis, perUser: 1, global: 1, queue: 2, fallback: .open)
        }) { proxy, fake in
            fake.stepMode = true
            defer { fake.stepMode = false }
            let status = try redis.kill(seenBy: proxy)
            // Open: over both caps, nobody waits.
            let one = try Self.held(proxy, fake, Self.alice, upstreamCount: 1)
            defer { one.close() }
            let two = try Self.held(proxy, fake, Self.alice, upstreamCount: 2)
            defer { two.close() }
            #expect(proxy.server.sharedQueued == 0)
            #expect(status.isInFallback(.slots))
            fake.allowLines(2 * (Self.tokens + 1))
            #expect(try one.readResponse().status == 200)
            #expect(try two.readResponse().status == 200)
        }
        try redis.start()
        try withProxyAndFake(tokens: Self.tokens, configure: {
            try? Self.configure(&$0, redis: redis, perUser: 1, global: 1, queue: 2, fallback: .closed)
        }) { proxy, fake in
            let status = try redis.kill(seenBy: proxy)
            let refused = try proxy.fetch(Req.generate(Self.alice))
            expectError(refused, status: 503, family: .ollama)
            #expect(refused.head.header("Retry-After") == "1")
            #expect(fake.requests.isEmpty)
            #expect(status.isInFallback(.slots))
            #expect(!status.isInFallback(.login))
        }
    }

    @Test func whileRedisIsDownANewcomerWithASlotFreeIsServedPastTheQueue() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(tokens: Self.tokens, configure: {
            try? Self.configure(&$0, redis: redis, perUser: 1, global: 2, queue: 4)
        }) { proxy, fake in
            fake.stepMode = true
            defer { fake.stepMode = false }
            _ = try redis.kill(seenBy: proxy)
            let first = try Self.held(proxy, fake, Self.alice, upstreamCount: 1)
            defer { first.close() }
            // Alice's second request waits for her own slot.
            let second = try proxy.tls()
            defer { second.close() }
            try second.send(Req.generate(Self.alice))
            #expect(waitUntil { proxy.server.sharedQueued == 1 }, "alice's second request did not queue")
            // Bob joins the queue behind her, and the local fallback grants him the free slot in the same pass.
            let third = try Self.held(proxy, fake, Self.bob, upstreamCount: 2)
            defer { third.close() }
            fake.allowLines(100)
            #expect(try first.readResponse().status == 200)
            #expect(try third.readResponse().status == 200)
            #expect(try second.readResponse().status == 200)
            #expect(fake.requests.count == 3)
        }
    }

    @Test func localFallbackAtCapsOverFleetSizeThenRecovery() throws {
        let redis = try RedisServerProcess()
        try withProxyAndFake(tokens: Self.tokens, configure: {
            try? Self.configure(&$0, redis: redis, perUser: 2, global: 2, queue: 4, fleet: 2)
        }) { proxy, fake in
            fake.stepMode = true
            defer { fake.stepMode = false }
            let status = try redis.kill(seenBy: proxy)
            // Caps 2 over a fleet of 2: one request in flight here while Redis is down.
            let first = try Self.held(proxy, fake, Self.alice, upstreamCount: 1)
            defer { first.close() }
            let second = try proxy.tls()
            defer { second.close() }
            try second.send(Req.generate(Self.bob))
            #expect(waitUntil { proxy.server.sharedQueued == 1 }, "the second request was not held back locally")
            #expect(status.isInFallback(.slots))
            fake.allowLines(Self.tokens + 1)
            #expect(try first.readResponse().status == 200)
            #expect(fake.waitForRequests(2, timeoutSeconds: eventTimeout), "the local release did not serve the queue")
            fake.allowLines(Self.tokens + 1)
            #expect(try second.readResponse().status == 200)

            try redis.start()
            #expect(eventually { status.isUp && !status.isInFallback(.slots) }, "the slots fallback did not end")
            let third = try Self.held(proxy, fake, Self.alice, upstreamCount: 3)
            defer { third.close() }
            #expect(try redis.leasesHeld() == 1)
            fake.allowLines(Self.tokens + 1)
            #expect(try third.readResponse().status == 200)
            #expect(eventually { (try? redis.leasesHeld()) == 0 })
        }
    }
}
