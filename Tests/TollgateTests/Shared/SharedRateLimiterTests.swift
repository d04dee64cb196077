import Synchronization
@testable import Tollgate
import TollgateIO
import TollgateTestSupport
import Testing

/// An epoch-like base so the script works with realistic magnitudes (µs since 1970 fit a double exactly).
private let baseMillis: UInt64 = 1_760_000_000_000

@Suite("Shared: SharedRateLimiter (GCRA in Redis) equals nginx limit_req", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedRateLimiterTests {
    let client = host("203.0.113.7")

    /// Runs `times` (ms offsets) through `limiter` in order, all pipelined in one loop turn, and returns the outcomes.
    func decide(_ limiter: SharedRateLimiter, on loop: TestLoop, key: String, _ times: [UInt64]) async -> [SharedRateOutcome] {
        await loop.call { (done: @escaping @Sendable ([SharedRateOutcome]) -> Void) in
            nonisolated(unsafe) var got: [SharedRateOutcome] = []
            for t in times {
                limiter.check(key: key, nowMicros: (baseMillis + t) * 1000) { outcome in
                    got.append(outcome)
                    if got.count == times.count { done(got) }
                }
            }
        } ?? []
    }

    /// The local limiter's decisions for the same times.
    func local(_ settings: RateLimitSettings, _ times: [UInt64]) -> [SharedRateOutcome] {
        let limiter = RateLimiter(settings: settings)
        return times.map { .decided(limiter.check(client, nowMillis: baseMillis + $0)) }
    }

    @Test func twentyFiveSimultaneousThenOnePerHundredMillisecondsLikeTheLocalLimiter() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let redis = try await makeClient(server.url(), on: loop)
        let limiter = SharedRateLimiter(client: redis, ratePerSecond: 10, burst: 20)
        var times = [UInt64](repeating: 0, count: 25)
        for step in UInt64(1)...50 { times += [step * 100 - 1, step * 100, step * 100] }
        let shared = await decide(limiter, on: loop, key: "a", times)
        #expect(shared == local(rateSettings(), times))
        #expect(shared.prefix(25).filter(\.isAllowed).count == 21)
        #expect(shared[0] == .decided(.allowed(remaining: 20)))
        #expect(shared[21] == .decided(.rejected(retryAfterSeconds: 1, resetMillis: 100)))
        await closeClient(redis, on: loop)
    }

    @Test func rejectedRequestsDoNotChangeStateAndRetryAfterMatches() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let redis = try await makeClient(server.url(), on: loop)
        // nginx's own test cases: rejections in between change nothing; 2 s of silence refills 20, 2.1 s refills 21.
        let fast = SharedRateLimiter(client: redis, ratePerSecond: 10, burst: 20)
        var times = [UInt64](repeating: 0, count: 21)
        for t in UInt64(0)..<100 { times += [t, t, t] }
        times += [100] + [UInt64](repeating: 2_100, count: 25) + [UInt64](repeating: 4_200, count: 25)
        #expect(await decide(fast, on: loop, key: "b", times) == local(rateSettings(), times))
        // A slow rate (one per 2 s, no burst) and a per-minute one: Retry-After and reset to the millisecond.
        let slowTimes: [UInt64] = [0, 0, 1_001, 1_999, 2_000, 2_000]
        let slow = SharedRateLimiter(client: redis, ratePerSecond: 0.5, burst: 0)
        #expect(await decide(slow, on: loop, key: "c", slowTimes) == local(rateSettings(rate: 0.5, burst: 0), slowTimes))
        let minuteTimes: [UInt64] = [0, 0, 0, 58_823, 58_824, 58_824]
        let perMinute = SharedRateLimiter(client: redis, ratePerSecond: 1.0 / 60, burst: 1)
        #expect(await decide(perMinute, on: loop, key: "d", minuteTimes) == local(rateSettings(rate: 1.0 / 60, burst: 1), minuteTimes))
        await closeClient(redis, on: loop)
    }

    @Test func tenSecondFloodAdmits121AcrossTwoInstancesOnTwoLoops() async throws {
        let server = try RedisServerProcess()
        let loops = [try TestLoop(), try TestLoop()]
        var limiters: [SharedRateLimiter] = []
        for loop in loops {
            limiters.append(SharedRateLimiter(client: try await makeClient(server.url(), on: loop), ratePerSecond: 10, burst: 20))
        }
        // Three requests every millisecond for 10 s, in 50 ms slices alternating between the instances.
        var all: [SharedRateOutcome] = []
        var times: [UInt64] = []
        for slice in 0..<200 {
            let slot = UInt64(slice) * 50
            var sliceTimes: [UInt64] = (slot..<(slot + 50)).flatMap { [$0, $0, $0] }
            if slice == 199 { sliceTimes += [10_000, 10_000, 10_000] }
            all += await decide(limiters[slice % 2], on: loops[slice % 2], key: "flood", sliceTimes)
            times += sliceTimes
        }
        #expect(all.filter(\.isAllowed).count == 121)
        #expect(all == local(rateSettings(), times))
        // One instance alone, a fresh key: the same total.
        var single: [SharedRateOutcome] = []
        for slice in 0..<20 {
            let slot = UInt64(slice) * 500
            single += await decide(limiters[0], on: loops[0], key: "flood-one", (slot..<(slot + 500)).flatMap { [$0, $0, $0] })
        }
        single += await decide(limiters[0], on: loops[0], key: "flood-one", [10_000])
        #expect(single.filter(\.isAllowed).count == 121)
        for (i, loop) in loops.enumerated() { await closeClient(limiters[i].client, on: loop) }
    }

    @Test func simultaneousBurstSplitOverTwoInstancesWithRedisTime() async throws {
        let server = try RedisServerProcess()
        let loops = [try TestLoop(), try TestLoop()]
        var limiters: [SharedRateLimiter] = []
        for loop in loops {
            limiters.append(SharedRateLimiter(client: try await makeClient(server.url(), on: loop), ratePerSecond: 10, burst: 20))
        }
        let key = ClientKey.of(client, ipv6PrefixLength: 64)
        let pair = limiters
        let fire: @Sendable (Int) async -> [SharedRateOutcome] = { i in
            let limiter = pair[i]
            return await loops[i].call { (done: @escaping @Sendable ([SharedRateOutcome]) -> Void) in
                nonisolated(unsafe) var got: [SharedRateOutcome] = []
                let n = i == 0 ? 13 : 12
                for _ in 0..<n { limiter.check(key) { got.append($0); if got.count == n { done(got) } } }
            } ?? []
        }
        // Redis's clock runs meanwhile: each 100 ms the 25 take (a busy machine) lets one more through.
        let started = ContinuousClock.now
        async let a = fire(0)
        async let b = fire(1)
        let both = await a + b
        let elapsed = ContinuousClock.now - started
        let accrued = Int(elapsed / .milliseconds(100))
        #expect(both.count == 25)
        let allowed = both.filter(\.isAllowed).count
        #expect(allowed >= 21 && allowed <= 21 + accrued, "\(allowed) allowed in \(elapsed)")
        #expect(both.filter { if case .decided(.rejected(1, let ms)) = $0 { return ms <= 100 } else { return false } }.count
                == 25 - allowed)
        for (i, loop) in loops.enumerated() { await closeClient(limiters[i].client, on: loop) }
    }

    @Test func rejectionsAreCachedLocallyAndAdmissionsNever() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let redis = try await makeClient(server.url(), on: loop)
        // One request per 1000 s, burst 2: three pass, then every later one is a rejection for a very long time. The
        // third admission leaves nothing, and its reply says until when: no rejection needs Redis. (Redis's clock
        // runs on meanwhile: the wait it answers is shorter by the time a busy machine took.)
        let limiter = SharedRateLimiter(client: redis, ratePerSecond: 0.001, burst: 2)
        let started = ContinuousClock.now
        let one: @Sendable () async -> SharedRateOutcome? = { await loop.call { done in limiter.check(key: "k") { done($0) } } }
        for _ in 0..<3 { #expect(await one()?.isAllowed == true) }
        guard case .decided(.rejected(let retry, let reset))? = await one() else { Issue.record("expected a cached rejection"); return }
        let took = Int((ContinuousClock.now - started) / .seconds(1)) + 1
        #expect(retry >= 1000 - took - 1 && retry <= 1000 && reset >= (1000 - took - 1) * 1000,
                "retry \(retry) s, reset \(reset) ms, \(took) s after the first admission")
        for _ in 0..<96 {
            guard case .decided(.rejected(let r, _))? = await one() else { Issue.record("expected a cached rejection"); return }
            #expect(r >= 1 && r <= retry)
        }
        let counters = await loop.run { limiter.counters }
        #expect(counters.checks == 100)
        #expect(counters.redisCalls == 3)
        #expect(counters.cacheHits == 97)
        // Another key is not affected by the cache.
        #expect(await loop.call { done in limiter.check(key: "other") { done($0) } }?.isAllowed == true)
        await closeClient(redis, on: loop)
    }

    @Test func peekDecidesWithoutCounting() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let redis = try await makeClient(server.url(), on: loop)
        let limiter = SharedRateLimiter(client: redis, ratePerSecond: 0.001, burst: 1, keyPrefix: "tollgate:login:")
        let t = (baseMillis + 10) * 1000
        func peek() async -> SharedRateOutcome? {
            await loop.call { done in limiter.peek(key: "p", nowMicros: t) { done($0) } }
        }
        // Peeks leave nothing behind, however many.
        for _ in 0..<5 { #expect(await peek() == .decided(.allowed(remaining: 1))) }
        #expect(await command(redis, on: loop, "EXISTS", "tollgate:login:p") == .success(.integer(0)))
        // Two counted requests fill the bucket; a peek now says rejected, with the same wait as a check.
        #expect(await decide(limiter, on: loop, key: "p", [10, 10]).allSatisfy(\.isAllowed))
        let peeked = await peek()
        let checked = await decide(limiter, on: loop, key: "p", [10]).first
        #expect(peeked == checked)
        guard case .decided(.rejected)? = peeked else { Issue.record("expected rejected, got \(String(describing: peeked))"); return }
        await closeClient(redis, on: loop)
    }

    @Test func redisDownIsUnavailableNotADecision() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let redis = try await makeClient(server.url(), on: loop)
        let limiter = SharedRateLimiter(client: redis, ratePerSecond: 10, burst: 20)
        #expect(await loop.call { done in limiter.check(key: "x") { done($0) } }?.isAllowed == true)
        server.kill()
        #expect(await loop.waitUntil { redis.health == .down })
        guard case .unavailable? = await loop.call({ done in limiter.check(key: "x") { done($0) } }) else {
            Issue.record("expected unavailable"); return
        }
        #expect(await loop.run { limiter.counters.unavailable } == 1)
        try server.start()
        #expect(await loop.waitUntil { redis.health == .up })
        // Redis restarted empty: the key starts over, as a fresh nginx node would.
        #expect(await loop.call { done in limiter.check(key: "x") { done($0) } } == .decided(.allowed(remaining: 20)))
        await closeClient(redis, on: loop)
    }
}

extension SharedRateOutcome {
    /// Whether the request was admitted.
    var isAllowed: Bool {
        if case .decided(.allowed) = self { return true }
        return false
    }
}
