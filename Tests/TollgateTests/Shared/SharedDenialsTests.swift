import Synchronization
@testable import Tollgate
import TollgateIO
import TollgateTestSupport
import Testing

/// An epoch-like base so the script works with realistic magnitudes (µs since 1970 fit a double exactly).
private let baseMicros: UInt64 = 1_760_000_000_000_000

@Suite("Shared: SharedDenials, the process-wide \"denied until\" cache")
struct SharedDenialsTableTests {
    @Test func keepsTheLaterDenialAndForgetsOnlyTheOneSeenExpired() {
        let denials = SharedDenials(capacity: 8)
        let key = Array("tollgate:rl:a".utf8)
        denials.remember(key, until: 200, now: 0)
        denials.remember(key, until: 150, now: 0)
        #expect(denials.until(key) == 200)
        denials.remember(key, until: 300, now: 0)
        #expect(denials.until(key) == 300)
        // A loop that saw 200 expire must not drop the 300 another loop stored meanwhile.
        denials.forget(key, ifUntil: 200)
        #expect(denials.until(key) == 300)
        denials.forget(key, ifUntil: 300)
        #expect(denials.until(key) == nil)
    }

    @Test func staysWithinCapacitySweepingExpiredEntriesFirst() {
        let denials = SharedDenials(capacity: 4)
        for i in 0..<4 { denials.remember(Array("k\(i)".utf8), until: 100, now: 0) }
        denials.remember(Array("full".utf8), until: 500, now: 50)
        #expect(denials.count == 4)
        #expect(denials.until(Array("full".utf8)) == nil)
        // Once the others have expired, a sweep makes room.
        denials.remember(Array("later".utf8), until: 500, now: 100)
        #expect(denials.until(Array("later".utf8)) == 500)
        #expect(denials.count == 1)
        #expect(SharedDenials(capacity: 0).until(Array("x".utf8)) == nil)
        let none = SharedDenials(capacity: 0)
        none.remember(Array("x".utf8), until: 500, now: 0)
        #expect(none.count == 0)
    }
}

@Suite("Shared: SharedRateLimiter's denial cache shared by loops", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedDenialsTests {
    /// One raw script call at an injected time: `[flag, remaining or wait, wait]`.
    func script(_ client: RedisClient, on loop: TestLoop, key: String, intervalMicros: UInt64, burst: Int,
                nowMicros: UInt64, peek: Bool = false) async -> [Int] {
        var args = [Array(String(intervalMicros).utf8), Array(String(burst).utf8), Array(String(nowMicros).utf8)]
        if peek { args.append(Array("1".utf8)) }
        let sent = args
        let reply = await loop.call { (done: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void) in
            client.evalScript(SharedRateScript.gcra, keys: [Array(key.utf8)], args: sent) { done($0) }
        }
        guard case .success(let value)? = reply, let elements = value.elements else { return [] }
        return elements.compactMap { $0.int.map { Int($0) } }
    }

    @Test func anAdmissionWithNothingLeftReturnsTheWaitOfARejectionAtThatInstant() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let redis = try await makeClient(server.url(), on: loop)
        // (T µs, burst): nginx-like rates, one that does not divide a millisecond, no burst.
        let cases: [(interval: UInt64, burst: Int)] = [(100_000, 20), (2_000_000, 0), (58_823_529, 1), (333_333, 3)]
        for n in cases.indices {
            let (interval, burst) = cases[n]
            let key = "w\(n)"
            var now = baseMicros
            var checked = 0
            for step in 0..<60 {
                let reply = await script(redis, on: loop, key: key, intervalMicros: interval, burst: burst, nowMicros: now)
                guard reply.count >= 2 else { Issue.record("bad reply \(reply)"); return }
                if reply[0] == 1 {
                    #expect(reply.count == 3)
                    let (remaining, wait) = (reply[1], reply[2])
                    #expect((remaining == 0) == (wait > 0), "T \(interval) burst \(burst) step \(step): \(reply)")
                    if remaining == 0 {
                        // The next request at this same instant is told exactly this wait...
                        let again = await script(redis, on: loop, key: key, intervalMicros: interval, burst: burst, nowMicros: now)
                        #expect(again == [0, wait])
                        // ...is still rejected 1 ms before it ends, and passes when it ends (peeks count nothing).
                        let before = now + UInt64(wait) - 1_000
                        let at = now + UInt64(wait)
                        #expect(await script(redis, on: loop, key: key, intervalMicros: interval, burst: burst, nowMicros: before, peek: true).first == 0)
                        #expect(await script(redis, on: loop, key: key, intervalMicros: interval, burst: burst, nowMicros: at, peek: true).first == 1)
                        checked += 1
                    }
                }
                // Mostly simultaneous requests, sometimes a pause of a few intervals, in whole milliseconds.
                now += step % 7 == 6 ? (interval * 3 / 1_000) * 1_000 : 0
            }
            #expect(checked > 0)
        }
        await closeClient(redis, on: loop)
    }

    /// Five requests on loop A, five on loop B, five on A again, ...: the outcomes and each limiter's counters.
    func alternate(_ limiters: [SharedRateLimiter], on loops: [TestLoop], key: String) async -> [SharedRateOutcome] {
        var all: [SharedRateOutcome] = []
        for round in 0..<6 {
            let limiter = limiters[round % 2]
            all += await loops[round % 2].call { (done: @escaping @Sendable ([SharedRateOutcome]) -> Void) in
                nonisolated(unsafe) var got: [SharedRateOutcome] = []
                for _ in 0..<5 { limiter.check(key: key) { got.append($0); if got.count == 5 { done(got) } } }
            } ?? []
        }
        return all
    }

    @Test func twoLoopsSharingTheCacheDecideTheSameWithFewerCalls() async throws {
        let server = try RedisServerProcess()
        let loops = [try TestLoop(), try TestLoop()]
        var clients: [RedisClient] = []
        for loop in loops { clients.append(try await makeClient(server.url(), on: loop)) }
        // One request per 1000 s, burst 2: three pass, and nothing else for the length of the test.
        func limiters(_ shared: SharedDenials?) -> [SharedRateLimiter] {
            clients.map { client in
                SharedRateLimiter(client: client, ratePerSecond: 0.001, burst: 2, keyPrefix: "tollgate:rl:",
                                  denials: shared ?? SharedDenials())
            }
        }
        let separate = limiters(nil)
        let shared = limiters(SharedDenials())
        let apart = await alternate(separate, on: loops, key: "apart")
        let together = await alternate(shared, on: loops, key: "together")
        #expect(apart.count == 30 && together.count == 30)
        // The same decisions, request for request (Retry-After counts down from 1000 s in both).
        #expect(apart.map(\.isAllowed) == together.map(\.isAllowed))
        #expect(together.filter(\.isAllowed).count == 3)
        for outcome in apart + together where !outcome.isAllowed {
            guard case .decided(.rejected(let retry, _)) = outcome else { Issue.record("\(outcome)"); continue }
            #expect(retry > 990 && retry <= 1000)
        }
        let callsApart = await loops[0].run { separate[0].counters.redisCalls } + (await loops[1].run { separate[1].counters.redisCalls })
        let callsTogether = await loops[0].run { shared[0].counters.redisCalls } + (await loops[1].run { shared[1].counters.redisCalls })
        // Each round's five checks are sent in one loop turn, before any reply. Apart: A's first five ask (the
        // third admission, with nothing left, caches the denial for A), then B's first five ask too.
        #expect(callsApart == 10)
        // Together: B learns the denial A's loop cached and never asks.
        #expect(callsTogether == 5)
        #expect(await loops[1].run { shared[1].counters.cacheHits } == 15)
        for (i, loop) in loops.enumerated() { await closeClient(clients[i], on: loop) }
    }

    @Test func checksOnOneLoopWaitForTheCallSentWhenTheDenialEnded() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let redis = try await makeClient(server.url(), on: loop)
        // One per second, no burst: the admission leaves nothing and caches a one-second denial.
        let limiter = SharedRateLimiter(client: redis, ratePerSecond: 1, burst: 0)
        #expect(await loop.call { done in limiter.check(key: "s") { done($0) } } == .decided(.allowed(remaining: 0)))
        try await Task.sleep(for: .milliseconds(1_200))
        // Ten checks in one loop turn once it has ended: the first calls, the other nine wait for its reply.
        let ten = await loop.call { (done: @escaping @Sendable ([SharedRateOutcome]) -> Void) in
            nonisolated(unsafe) var got: [SharedRateOutcome] = []
            for _ in 0..<10 { limiter.check(key: "s") { got.append($0); if got.count == 10 { done(got) } } }
        } ?? []
        // The decisions Redis would have given each: the first passes, the rest wait about a second.
        #expect(ten.first == .decided(.allowed(remaining: 0)))
        #expect(ten.dropFirst().count == 9)
        for outcome in ten.dropFirst() {
            guard case .decided(.rejected(1, let reset)) = outcome else { Issue.record("\(outcome)"); continue }
            #expect(reset > 0 && reset <= 1_000)
        }
        let counters = await loop.run { limiter.counters }
        #expect(counters.checks == 11 && counters.redisCalls == 2 && counters.joined == 9 && counters.cacheHits == 9)
        // Behind a peek (which caches nothing) the waiters find no denial when their turn comes, and call.
        try await Task.sleep(for: .milliseconds(1_200))
        let mixed = await loop.call { (done: @escaping @Sendable ([SharedRateOutcome]) -> Void) in
            nonisolated(unsafe) var got: [SharedRateOutcome] = []
            limiter.peek(key: "s") { got.append($0) }
            limiter.check(key: "s") { got.append($0) }
            limiter.check(key: "s") { got.append($0); done(got) }
        } ?? []
        #expect(mixed.map(\.isAllowed) == [true, true, false])
        #expect(await loop.run { limiter.counters.redisCalls } == 5)
        await closeClient(redis, on: loop)
    }

    @Test func aDenialLearnedOnOneLoopEndsForAllWhenRedisSaysSo() async throws {
        let server = try RedisServerProcess()
        let loops = [try TestLoop(), try TestLoop()]
        var clients: [RedisClient] = []
        for loop in loops { clients.append(try await makeClient(server.url(), on: loop)) }
        let denials = SharedDenials()
        let pair = clients.map { SharedRateLimiter(client: $0, ratePerSecond: 1, burst: 0, keyPrefix: "tollgate:rl:", denials: denials) }
        func one(_ i: Int) async -> SharedRateOutcome? {
            let limiter = pair[i]
            return await loops[i].call { done in limiter.check(key: "k") { done($0) } }
        }
        // A's admission leaves nothing: B is told "wait" without asking Redis.
        #expect(await one(0) == .decided(.allowed(remaining: 0)))
        #expect(denials.count == 1)
        guard case .decided(.rejected(1, let reset))? = await one(1) else { Issue.record("expected a cached rejection"); return }
        #expect(reset > 0 && reset <= 1_000)
        let counters = await loops[1].run { pair[1].counters }
        #expect(counters.checks == 1 && counters.cacheHits == 1 && counters.redisCalls == 0)
        // Once the second has passed, B asks Redis, which admits it; and A now learns B's denial.
        try await Task.sleep(for: .milliseconds(1_200))
        #expect(await one(1) == .decided(.allowed(remaining: 0)))
        #expect(await loops[1].run { pair[1].counters.redisCalls } == 1)
        guard case .decided(.rejected)? = await one(0) else { Issue.record("expected a cached rejection"); return }
        #expect(await loops[0].run { pair[0].counters.redisCalls } == 1)
        // Forgetting (Redis came back) empties it for both.
        await loops[0].run { pair[0].forgetDenials() }
        #expect(await loops[1].run { pair[1].cachedDenials } == 0)
        for (i, loop) in loops.enumerated() { await closeClient(clients[i], on: loop) }
    }
}
