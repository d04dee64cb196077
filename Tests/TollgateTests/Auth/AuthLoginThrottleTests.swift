import Testing
@testable import Tollgate

/// The failed-login throttle's keys, limits and window, with an injected clock (nanoseconds).
@Suite struct AuthLoginThrottleTests {
    private static let second: UInt64 = 1_000_000_000

    private func key(_ ip: String, _ user: String) -> LoginThrottle.Key {
        LoginThrottle.Key(clientIP: ip, user: user)
    }

    @Test func ipv6IsGroupedByItsSlash64AndIPv4ByAddress() {
        #expect(key("2001:db8:1:2::1", "a").prefix == key("2001:db8:1:2:ffff:eeee:dddd:cccc", "b").prefix)
        #expect(key("2001:db8:1:2::1", "a").prefix != key("2001:db8:1:3::1", "a").prefix)
        #expect(key("203.0.113.7", "a").prefix != key("203.0.113.8", "a").prefix)
        #expect(key("::ffff:203.0.113.7", "a").prefix == key("203.0.113.7", "a").prefix)
        #expect(key("2001:db8:1:2:aaaa::9", "a").prefixText == "2001:db8:1:2::/64")
        #expect(key("203.0.113.7", "a").prefixText == "203.0.113.7")
        #expect(key("2001:db8:1:2::1", "a") != key("2001:db8:1:2::1", "b"))
    }

    @Test func aUserIsThrottledFromOnePrefixOnly() {
        var t = LoginThrottle(userLimit: 3, windowNanos: 60 * Self.second)
        let now: UInt64 = 1_000 * Self.second
        #expect(t.recordFailure(key("203.0.113.7", "alice"), now: now) == nil)
        #expect(t.recordFailure(key("203.0.113.7", "alice"), now: now) == nil)
        #expect(t.recordFailure(key("203.0.113.7", "alice"), now: now) == .user)
        #expect(t.retryAfter(key("203.0.113.7", "alice"), now: now) == 60)
        // Another user behind the same address, and the same user from elsewhere, are not affected.
        #expect(t.retryAfter(key("203.0.113.7", "bob"), now: now) == nil)
        #expect(t.retryAfter(key("198.51.100.1", "alice"), now: now) == nil)
    }

    @Test func aPrefixGuessingManyUsersIsThrottledForEveryUser() {
        var t = LoginThrottle(userLimit: 2, windowNanos: 60 * Self.second)
        #expect(t.prefixLimit == 2 * LoginThrottle.prefixMultiple)
        var now: UInt64 = 1_000 * Self.second
        // One failure for each of many users, each from another address of the same /64.
        var throttled: LoginThrottle.Throttled?
        for i in 0..<t.prefixLimit {
            #expect(throttled == nil)
            throttled = t.recordFailure(key("2001:db8:7:7::\(i + 1)", "user\(i)"), now: now)
            now += Self.second
        }
        #expect(throttled == .prefix)
        let last = now - Self.second
        #expect(t.retryAfter(key("2001:db8:7:7:1234::1", "somebody-else"), now: last) == 60 - 5)
        #expect(t.retryAfter(key("2001:db8:7:8::1", "somebody-else"), now: last) == nil)
        #expect(t.retryAfter(key("203.0.113.7", "user0"), now: last) == nil)
    }

    @Test func aThrottleEndsWhenItsOldestFailureLeavesTheWindow() {
        var t = LoginThrottle(userLimit: 2, windowNanos: 60 * Self.second)
        let start: UInt64 = 1_000 * Self.second
        let k = key("203.0.113.7", "alice")
        _ = t.recordFailure(k, now: start)
        _ = t.recordFailure(k, now: start + 10 * Self.second)
        #expect(t.retryAfter(k, now: start + 10 * Self.second) == 50)
        #expect(t.retryAfter(k, now: start + 59 * Self.second) == 1)
        #expect(t.retryAfter(k, now: start + 60 * Self.second) == nil)
        // One of the two is still in the window: one more failure throttles again, until that one leaves.
        #expect(t.recordFailure(k, now: start + 61 * Self.second) == .user)
        #expect(t.retryAfter(k, now: start + 61 * Self.second) == 9)
        #expect(t.retryAfter(k, now: start + 131 * Self.second) == nil)
        #expect(t.tracked.users == 0)
    }

    @Test func theLongerOfTheTwoThrottlesIsReported() {
        var t = LoginThrottle(userLimit: 1, windowNanos: 60 * Self.second)
        let start: UInt64 = 1_000 * Self.second
        _ = t.recordFailure(key("203.0.113.7", "a"), now: start)
        _ = t.recordFailure(key("203.0.113.7", "b"), now: start + 20 * Self.second)
        #expect(t.recordFailure(key("203.0.113.7", "a"), now: start + 30 * Self.second) == .prefix)
        // a: its own newest failure (+30) ends its throttle at +90; the prefix's oldest of three (+0) at +60.
        #expect(t.retryAfter(key("203.0.113.7", "a"), now: start + 30 * Self.second) == 60)
        #expect(t.retryAfter(key("203.0.113.7", "c"), now: start + 30 * Self.second) == 30)
    }

    @Test func zeroTurnsItOff() {
        var t = LoginThrottle(userLimit: 0, windowNanos: 60 * Self.second)
        for _ in 0..<100 { #expect(t.recordFailure(key("203.0.113.7", "alice"), now: 5) == nil) }
        #expect(t.retryAfter(key("203.0.113.7", "alice"), now: 5) == nil)
    }
}
