@testable import Tollgate
import TollgateIO
import Testing

@Suite("RateLimiter: nginx limit_req arithmetic")
struct LimitsRateLimiterTests {
    let client = host("203.0.113.7")

    @Test func twentyFiveSimultaneousGiveTwentyOnePasses() {
        let limiter = RateLimiter(settings: rateSettings())
        let decisions = (0..<25).map { _ in limiter.check(client, nowMillis: 0) }
        #expect(decisions.filter(\.isAllowed).count == 21)
        #expect(decisions.prefix(21).allSatisfy { $0.isAllowed })
        #expect(decisions.first == .allowed(remaining: 20))
        #expect(decisions[20] == .allowed(remaining: 0))
        #expect(decisions[21] == .rejected(retryAfterSeconds: 1, resetMillis: 100))
    }

    @Test func thenExactlyOnePerHundredMilliseconds() {
        let limiter = RateLimiter(settings: rateSettings())
        for _ in 0..<25 { _ = limiter.check(client, nowMillis: 0) }
        for step in 1...50 {
            let t = UInt64(step) * 100
            #expect(limiter.check(client, nowMillis: t - 1).isAllowed == false, "at \(t - 1) ms")
            #expect(limiter.check(client, nowMillis: t) == .allowed(remaining: 0), "at \(t) ms")
            #expect(limiter.check(client, nowMillis: t).isAllowed == false, "second at \(t) ms")
        }
    }

    @Test func tenSecondFloodAdmits121() {
        let limiter = RateLimiter(settings: rateSettings())
        var admitted = 0
        for t in UInt64(0)...10_000 where limiter.check(client, nowMillis: t).isAllowed { admitted += 1 }
        #expect(admitted == 20 + 10 * 10 + 1)
    }

    @Test func floodOfSeveralPerMillisecondAlsoAdmits121() {
        let limiter = RateLimiter(settings: rateSettings())
        var admitted = 0
        for t in UInt64(0)...10_000 {
            for _ in 0..<5 where limiter.check(client, nowMillis: t).isAllowed { admitted += 1 }
        }
        #expect(admitted == 121)
    }

    @Test func rejectedRequestsDoNotConsume() {
        let limiter = RateLimiter(settings: rateSettings())
        for _ in 0..<21 { #expect(limiter.check(client, nowMillis: 0).isAllowed) }
        // 1000 rejections between 0 and 99 ms change nothing: the pass still comes at exactly 100 ms.
        for t in UInt64(0)..<100 { for _ in 0..<10 { #expect(!limiter.check(client, nowMillis: t).isAllowed) } }
        #expect(limiter.check(client, nowMillis: 100).isAllowed)
        // 2 s of silence drains the 20 of excess: 20 pass at once (the first one itself adds 1000 to a known key).
        let later = (0..<25).map { _ in limiter.check(client, nowMillis: 2_100) }
        #expect(later.filter(\.isAllowed).count == 20)
        // 2.1 s drains excess + 1000: like a new key, 21 pass.
        let fresh = (0..<25).map { _ in limiter.check(client, nowMillis: 4_200) }
        #expect(fresh.filter(\.isAllowed).count == 21)
    }

    @Test func retryAfterIsWholeSecondsUntilAPassAtLeastOne() {
        let slow = RateLimiter(settings: rateSettings(rate: 0.5, burst: 0))  // one request per 2 s
        #expect(slow.check(client, nowMillis: 0) == .allowed(remaining: 0))
        #expect(slow.check(client, nowMillis: 0) == .rejected(retryAfterSeconds: 2, resetMillis: 2_000))
        #expect(slow.check(client, nowMillis: 1_001) == .rejected(retryAfterSeconds: 1, resetMillis: 999))
        #expect(slow.check(client, nowMillis: 1_999) == .rejected(retryAfterSeconds: 1, resetMillis: 1))
        #expect(slow.check(client, nowMillis: 2_000).isAllowed)

        let perMinute = RateLimiter(settings: rateSettings(rate: 1.0 / 60, burst: 1))  // 1 r/m, stored as 17 thousandths per second
        #expect(perMinute.check(client, nowMillis: 0).isAllowed)
        #expect(perMinute.check(client, nowMillis: 0).isAllowed)
        guard case .rejected(let seconds, let ms) = perMinute.check(client, nowMillis: 0) else {
            Issue.record("expected a rejection"); return
        }
        #expect(ms == 58_824)  // ceil(1000 * 1000 / 17)
        #expect(seconds == 59)
        #expect(perMinute.check(client, nowMillis: 58_823).isAllowed == false)
        #expect(perMinute.check(client, nowMillis: 58_824).isAllowed)
    }

    @Test func keysAreIndependent() {
        let limiter = RateLimiter(settings: rateSettings())
        for _ in 0..<30 { _ = limiter.check(client, nowMillis: 0) }
        #expect(limiter.check(host("203.0.113.8"), nowMillis: 0) == .allowed(remaining: 20))
        #expect(limiter.keyCount == 2)
    }

    @Test func clockBehindByAFewMillisecondsCountsAsNoTime() {
        // Each loop caches its own clock; a slightly older `now` must neither refill nor move `last` backwards.
        let limiter = RateLimiter(settings: rateSettings())
        for _ in 0..<21 { _ = limiter.check(client, nowMillis: 1_000) }
        #expect(!limiter.check(client, nowMillis: 990).isAllowed)
        #expect(!limiter.check(client, nowMillis: 1_099).isAllowed)
        #expect(limiter.check(client, nowMillis: 1_100).isAllowed)
    }

    @Test func exemptBlocksAreNeverCounted() {
        var settings = rateSettings(burst: 0)
        settings.exempt = [cidr("10.0.0.0/8"), cidr("2001:db8::/32")]
        let limiter = RateLimiter(settings: settings)
        for _ in 0..<100 {
            #expect(limiter.check(host("10.1.2.3"), nowMillis: 0) == .exempt)
            #expect(limiter.check(host("2001:db8:1::5"), nowMillis: 0) == .exempt)
        }
        #expect(limiter.keyCount == 0)
        #expect(limiter.check(host("11.0.0.1"), nowMillis: 0).isAllowed)
        #expect(!limiter.check(host("11.0.0.1"), nowMillis: 0).isAllowed)
        #expect(limiter.headers(for: .exempt).isEmpty)
    }

    @Test func dryRunReportsButTheCallerLetsThrough() {
        var settings = rateSettings()
        settings.dryRun = true
        let limiter = RateLimiter(settings: settings)
        #expect(limiter.isDryRun)
        let decisions = (0..<25).map { _ in limiter.check(client, nowMillis: 0) }
        #expect(decisions.filter(\.isAllowed).count == 21)  // same truth as enforcing; state not advanced by rejects
    }

    @Test func headersFollowTheCurrentDraft() {
        let limiter = RateLimiter(settings: rateSettings())
        let first = limiter.check(client, nowMillis: 0)
        #expect(limiter.headers(for: first).map { "\($0.0): \($0.1)" } == [
            "RateLimit-Policy: \"default\";q=20;w=2",
            "RateLimit: \"default\";r=20;t=0",
        ])
        for _ in 0..<9 { _ = limiter.check(client, nowMillis: 0) }
        let tenth = limiter.check(client, nowMillis: 0)
        #expect(tenth == .allowed(remaining: 10))
        #expect(limiter.headers(for: tenth)[1].1 == "\"default\";r=10;t=1")
        for _ in 0..<10 { _ = limiter.check(client, nowMillis: 0) }
        let rejected = limiter.check(client, nowMillis: 0)
        #expect(limiter.headers(for: rejected).map { "\($0.0): \($0.1)" } == [
            "Retry-After: 1",
            "RateLimit-Policy: \"default\";q=20;w=2",
            "RateLimit: \"default\";r=0;t=1",
        ])
        let noBurst = RateLimiter(settings: rateSettings(rate: 5, burst: 0))
        #expect(noBurst.headers(for: .allowed(remaining: 0))[0].1 == "\"default\";q=5;w=1")
    }

    @Test func userLimiterSharesTheArithmetic() {
        let users = UserRateLimiter(ratePerSecond: 10, burst: 20, maxKeys: 10)
        let alice = (0..<25).map { _ in users.check(user: "alice", nowMillis: 0) }
        #expect(alice.filter(\.isAllowed).count == 21)
        #expect(users.check(user: "bob", nowMillis: 0) == .allowed(remaining: 20))
        #expect(users.check(user: "alice", nowMillis: 100) == .allowed(remaining: 0))
        #expect(users.headers(for: .allowed(remaining: 0))[1].1 == "\"user\";r=0;t=2")
        for i in 0..<50 { _ = users.check(user: "u\(i)", nowMillis: 200) }
        #expect(users.keyCount == 10)
    }
}
