@testable import Tollgate
import Dispatch
import Synchronization
import Testing
import TollgateIO

@Suite("RateLimiter: bounded table and shared state")
struct LimitsRateTableTests {
    static func v4(_ i: Int) -> SocketAddress.Host {
        host("10.\(i >> 16 & 255).\(i >> 8 & 255).\(i & 255)")
    }

    @Test func evictsTheLeastRecentlyUsedKeyAtTheBound() {
        let limiter = RateLimiter(settings: rateSettings(maxKeys: 3), shardCount: 1)
        let a = host("192.0.2.1"), b = host("192.0.2.2"), c = host("192.0.2.3"), d = host("192.0.2.4")
        for _ in 0..<21 { _ = limiter.check(a, nowMillis: 0) }  // a exhausted
        _ = limiter.check(b, nowMillis: 1)
        _ = limiter.check(c, nowMillis: 2)
        #expect(!limiter.check(a, nowMillis: 3).isAllowed)  // a used again (a rejected lookup counts as use)
        _ = limiter.check(d, nowMillis: 4)                    // evicts b, the least recently used
        #expect(limiter.keyCount == 3)
        let key = { (h: SocketAddress.Host) in ClientKey.of(h, ipv6PrefixLength: 64) }
        #expect(limiter.isTracking(key(a)))
        #expect(!limiter.isTracking(key(b)))
        #expect(limiter.isTracking(key(c)))
        #expect(limiter.isTracking(key(d)))
        #expect(!limiter.check(a, nowMillis: 5).isAllowed)  // a kept its state: still limited
    }

    @Test func anEvictedKeyStartsAfresh() {
        let limiter = RateLimiter(settings: rateSettings(maxKeys: 1), shardCount: 1)
        for _ in 0..<25 { _ = limiter.check(host("192.0.2.1"), nowMillis: 0) }
        _ = limiter.check(host("192.0.2.2"), nowMillis: 0)
        #expect(limiter.check(host("192.0.2.1"), nowMillis: 0) == .allowed(remaining: 20))
    }

    @Test func manyKeysStayWithinTheBoundAcrossShards() {
        // 4 099 does not divide by 4: the shards hold 1 025 + 3 × 1 024, exactly the bound once all are full.
        let limiter = RateLimiter(settings: rateSettings(maxKeys: 4_099), shardCount: 4)
        for i in 0..<20_000 { _ = limiter.check(LimitsRateTableTests.v4(i), nowMillis: UInt64(i)) }
        #expect(limiter.keyCount == 4_099)
        // The most recent keys are all still there.
        for i in 19_900..<20_000 { #expect(limiter.isTracking(ClientKey.of(LimitsRateTableTests.v4(i), ipv6PrefixLength: 64))) }
    }

    @Test func defaultShardCountKeepsSmallTablesExact() {
        #expect(ShardedBuckets<ClientKey>.defaultShardCount(maxKeys: 10) == 1)
        #expect(ShardedBuckets<ClientKey>.defaultShardCount(maxKeys: 2_047) == 1)
        #expect(ShardedBuckets<ClientKey>.defaultShardCount(maxKeys: 4_096) == 4)
        #expect(ShardedBuckets<ClientKey>.defaultShardCount(maxKeys: 100_000) == 64)
    }

    @Test func manyThreadsOnOneKeyShareOneBucket() {
        let limiter = RateLimiter(settings: rateSettings())
        let client = host("198.51.100.9")
        let admitted = Atomic<Int>(0)
        // Four threads, 2 000 requests each, all at t = 0: exactly 21 pass, however they interleave.
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<2_000 where limiter.check(client, nowMillis: 0).isAllowed {
                admitted.add(1, ordering: .relaxed)
            }
        }
        #expect(admitted.load(ordering: .relaxed) == 21)
        // Five seconds later the bucket has drained: again exactly 21.
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<2_000 where limiter.check(client, nowMillis: 5_000).isAllowed {
                admitted.add(1, ordering: .relaxed)
            }
        }
        #expect(admitted.load(ordering: .relaxed) == 42)
    }

    @Test func manyThreadsOnManyKeysLoseNoUpdates() {
        let limiter = RateLimiter(settings: rateSettings(), shardCount: 8)
        let admitted = Atomic<Int>(0)
        // 4 threads × 64 keys × 30 requests at t = 0, in different orders: 21 per key.
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for round in 0..<30 {
                for k in 0..<64 {
                    let key = (k * (thread + 1) + round) % 64
                    if limiter.check(LimitsRateTableTests.v4(key), nowMillis: 0).isAllowed { admitted.add(1, ordering: .relaxed) }
                }
            }
        }
        #expect(admitted.load(ordering: .relaxed) == 64 * 21)
        #expect(limiter.keyCount == 64)
    }
}
