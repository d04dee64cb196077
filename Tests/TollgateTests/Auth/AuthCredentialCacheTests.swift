import Testing
@testable import Tollgate

@Suite struct AuthCredentialCacheTests {
    private func key(_ cache: CredentialCache, _ user: String, _ hash: String = "h", _ password: String = "p") -> [UInt8] {
        cache.makeKey(user: user, storedHash: hash, password: Array(password.utf8))
    }

    @Test func storesBothOutcomesUntilTheTTL() {
        let cache = CredentialCache(maxEntries: 10, ttlNanos: 1_000)
        let good = key(cache, "alice")
        let bad = key(cache, "alice", "h", "wrong")
        #expect(cache.lookup(good, now: 0) == nil)
        cache.store(good, valid: true, now: 0)
        cache.store(bad, valid: false, now: 0)
        #expect(cache.lookup(good, now: 999) == true)
        #expect(cache.lookup(bad, now: 999) == false)
        #expect(cache.lookup(good, now: 1_000) == nil)
        #expect(cache.count == 1)
        cache.removeAll()
        #expect(cache.lookup(bad, now: 0) == nil)
    }

    @Test func keysDependOnUserHashPasswordAndSecret() {
        let cache = CredentialCache(key: Array("k".utf8))
        let base = key(cache, "alice", "h1", "p")
        #expect(base.count == 32)
        #expect(base == key(cache, "alice", "h1", "p"))
        #expect(base != key(cache, "alice", "h2", "p"))
        #expect(base != key(cache, "alice", "h1", "q"))
        #expect(base != key(cache, "bob", "h1", "p"))
        #expect(base != key(CredentialCache(key: Array("other".utf8)), "alice", "h1", "p"))
        #expect(key(CredentialCache(), "a") != key(CredentialCache(), "a"))
        #expect(base == CredentialCache.makeKey(secret: Array("k".utf8), user: "alice", storedHash: "h1",
                                                password: Array("p".utf8)))
    }

    @Test func evictsTheLeastRecentlyUsedAtTheBound() {
        let cache = CredentialCache(maxEntries: 3, ttlNanos: 1_000_000)
        let keys = (0..<4).map { key(cache, "user\($0)") }
        for k in keys.prefix(3) { cache.store(k, valid: true, now: 0) }
        #expect(cache.lookup(keys[0], now: 1) == true)      // 0 is now the most recent; 1 the least
        cache.store(keys[3], valid: false, now: 2)
        #expect(cache.count == 3)
        #expect(cache.evictions == 1)
        #expect(cache.lookup(keys[1], now: 3) == nil)
        #expect(cache.lookup(keys[0], now: 3) == true)
        #expect(cache.lookup(keys[2], now: 3) == true)
        #expect(cache.lookup(keys[3], now: 3) == false)
        for i in 0..<100 { cache.store(key(cache, "many\(i)"), valid: true, now: 4) }
        #expect(cache.count == 3)
        #expect(CredentialCache(maxEntries: 0).count == 0)
    }
}
