import Glibc
import Synchronization
import Testing
import TollgateIO
@testable import Tollgate

/// A wall clock the test sets by hand (seconds since the epoch).
final class KeyRingClock: Sendable {
    private let seconds = Atomic<Int64>(1_800_000_000)
    var now: Int64 { seconds.load(ordering: .relaxed) }
    var function: @Sendable () -> Int64 { { [self] in now } }
    func set(_ value: Int64) { seconds.store(value, ordering: .relaxed) }
}

/// The key ring (the loops' snapshot), its watcher, and key logins through the authenticator.
@Suite struct KeysRingTests {
    private func key(_ token: APIKeyToken, user: String = "alice", expires: Int64? = nil, models: [String] = []) -> APIKey {
        APIKey(id: token.id, user: user, hash: token.hash, created: 1_700_000_000, expires: expires, models: models)
    }

    @Test func expiryIsCheckedAgainstTheClockOnEveryUse() throws {
        let clock = KeyRingClock()
        let ring = KeyRing(clock: clock.function)
        let token = APIKeyToken.generate()
        ring.replace(with: [key(token, expires: clock.now + 60)])
        #expect(ring.verify(token) == .valid(KeyGrant(id: token.id, user: "alice", models: nil)))
        clock.set(clock.now + 59)
        #expect(ring.recheck(token.id) != nil)
        clock.set(clock.now + 1)
        #expect(ring.verify(token) == .expired(user: "alice"))
        #expect(ring.recheck(token.id) == nil)
    }

    @Test func revokedAndExpiredAreToldOnlyWithTheRightSecret() {
        let ring = KeyRing()
        let token = APIKeyToken.generate()
        var record = key(token)
        record.revoked = 1
        ring.replace(with: [record])
        #expect(ring.verify(token) == .revoked(user: "alice"))
        let forged = APIKeyToken.parse("tg_\(token.id)_" + String(repeating: "a", count: APIKeyToken.secretLength))!
        #expect(ring.verify(forged) == .wrongSecret(user: "alice"))
        #expect(ring.verify(APIKeyToken.generate()) == .unknown)
    }

    @Test func aRevocationInTheStoreReachesTheSnapshotOnTheNextPoll() throws {
        let store = InMemoryKeyStore()
        let ring = KeyRing()
        let token = APIKeyToken.generate()
        try store.insert(key(token, models: ["mistral"]))
        let watcher = try KeyWatcher(store: store, ring: ring, start: false)
        defer { watcher.stop() }
        #expect(ring.verify(token) == .valid(KeyGrant(id: token.id, user: "alice", models: ["mistral"])))
        // Nothing changed: no reload.
        #expect(!watcher.refresh())
        #expect(try store.revoke(id: token.id, at: 5))
        let generation = ring.generation
        #expect(watcher.refresh())
        #expect(ring.generation != generation)
        #expect(ring.verify(token) == .revoked(user: "alice"))
        #expect(try store.revoke(id: "nosuchkey234", at: 5) == false)
    }

    @Test func fleetRevocationsOutliveASnapshotReplacement() throws {
        final class Fleet: FleetRevocations {
            let ids = Mutex<Set<String>?>(nil)
            func revokedSince() -> Set<String>? { ids.withLock { v in defer { v = nil }; return v } }
        }
        let store = InMemoryKeyStore()
        let ring = KeyRing()
        let fleet = Fleet()
        let token = APIKeyToken.generate()
        try store.insert(key(token))
        let watcher = try KeyWatcher(store: store, ring: ring, fleet: fleet, start: false)
        defer { watcher.stop() }
        fleet.ids.withLock { $0 = [token.id] }
        watcher.refresh()
        #expect(ring.verify(token) == .revoked(user: "alice"))
        try store.insert(key(APIKeyToken.generate()))
        #expect(watcher.refresh())
        #expect(ring.verify(token) == .revoked(user: "alice"))
    }

    @Test func lastUseIsCollectedInMemoryAndWrittenInOneBatch() throws {
        let clock = KeyRingClock()
        let store = InMemoryKeyStore()
        let ring = KeyRing(clock: clock.function)
        let token = APIKeyToken.generate()
        try store.insert(key(token))
        let watcher = try KeyWatcher(store: store, ring: ring, start: false)
        for _ in 0..<100 { _ = ring.verify(token) }
        // Requests wrote nothing yet.
        #expect(try store.all()[0].lastUsed == nil)
        watcher.flushLastUsed()
        #expect(try store.all()[0].lastUsed == clock.now)
        #expect(ring.takeLastUsed().isEmpty)
        watcher.stop()
    }

    private func authenticator(_ users: String, failureLimit: Int = 3, clock: TestClock) -> Authenticator {
        Authenticator(users: UsersFile.parse(users, path: "users.htpasswd"),
                      settings: Authenticator.Settings(workers: 1, failureLimit: failureLimit), clock: clock.function)
    }

    @Test func keyLoginsCountFailuresAndFollowTheUsersFile() throws {
        let clock = TestClock()
        let auth = authenticator("alice:{PLAIN}pw\nbob:{PLAIN}pw\n", clock: clock)
        defer { auth.shutdown() }
        let ring = KeyRing()
        let token = APIKeyToken.generate()
        let bobs = APIKeyToken.generate()
        ring.replace(with: [key(token, models: ["mistral"]), key(bobs, user: "bob")])
        func login(_ t: APIKeyToken, claimed: String? = nil, ip: String = "192.0.2.1") -> Authenticator.KeyLogin {
            auth.checkKey(t, claimedUser: claimed, throttleUser: ring.owner(of: t.id) ?? "tg_\(t.id)", clientIP: ip,
                          ring: ring)
        }
        #expect(login(token) == .allowed(KeyGrant(id: token.id, user: "alice", models: ["mistral"])))
        #expect(login(token, claimed: "alice") == .allowed(KeyGrant(id: token.id, user: "alice", models: ["mistral"])))
        // Another user's name with this key is refused.
        #expect(login(token, claimed: "bob") == .denied(message: "invalid API key"))
        // Wrong secrets count as failed logins: three throttle (user, prefix) from that address...
        let wrong = APIKeyToken.parse("tg_\(token.id)_" + String(repeating: "b", count: APIKeyToken.secretLength))!
        for _ in 0..<3 { #expect(login(wrong, ip: "198.51.100.7") == .denied(message: "invalid API key")) }
        guard case .throttled = login(wrong, ip: "198.51.100.7") else {
            Issue.record("three wrong secrets did not throttle the fourth")
            return
        }
        // ...while the right key, not verified from there, is refused too; from elsewhere it works.
        guard case .throttled = login(token, ip: "198.51.100.7") else {
            Issue.record("a throttled address got a check")
            return
        }
        #expect(login(token, ip: "203.0.113.5") != .denied(message: "invalid API key"))
        // bob removed from the users file: his key stops working at once.
        auth.replaceUsers(UsersFile.parse("alice:{PLAIN}pw\n", path: "users.htpasswd"))
        #expect(login(bobs) == .denied(message: "the API key's user can no longer log in"))
        #expect(auth.stats.denied >= 4)
    }

    @Test func theSQLiteStoreKeepsKeysAndSeesOtherWriters() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/state/tollgate.db"
        let server = try SQLiteKeyStore(path: path)
        let cli = try SQLiteKeyStore(path: path, create: false)
        defer {
            server.close()
            cli.close()
        }
        let token = APIKeyToken.generate()
        let before = try server.changeToken()
        try cli.insert(APIKey(id: token.id, user: "alice", name: "laptop", hash: token.hash, created: 10, expires: 99,
                              models: ["a", "b:7b"]))
        #expect(try server.changeToken() != before)
        let stored = try server.all()
        #expect(stored == [APIKey(id: token.id, user: "alice", name: "laptop", hash: token.hash, created: 10,
                                  expires: 99, models: ["a", "b:7b"])])
        #expect(throws: KeyStoreError.self) { try cli.insert(stored[0]) }
        // The server's own last-use writes do not look like another writer's change.
        let mine = try server.changeToken()
        try server.recordLastUsed([token.id: 50])
        try server.recordLastUsed([token.id: 40])
        #expect(try server.changeToken() == mine)
        #expect(try cli.all()[0].lastUsed == 50)
        #expect(try cli.revoke(id: token.id, at: 60))
        #expect(try server.changeToken() != mine)
        #expect(try server.all()[0].revoked == 60)
        var mode = stat()
        #expect(stat(path, &mode) == 0 && mode.st_mode & 0o777 == 0o600)
    }

    @Test func theChangeCounterMovesWithKeysOnlyNeverWithTheLedgerOrLastUse() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/state/tollgate.db"
        let server = try SQLiteKeyStore(path: path)
        let cli = try SQLiteKeyStore(path: path, create: false)
        let other = try SQLiteDatabase(path: path, mode: .readWrite, busyTimeoutMillis: 1000)
        defer {
            server.close()
            cli.close()
            other.close()
        }
        let token = APIKeyToken.generate()
        try cli.insert(APIKey(id: token.id, user: "alice", name: "", hash: token.hash, created: 1))
        let start = try server.changeToken()
        // Another connection's commits to another table (the usage ledger's) and last-use times from anywhere.
        try other.exec("CREATE TABLE ledger_like (n INTEGER); INSERT INTO ledger_like VALUES (1);")
        try cli.recordLastUsed([token.id: 5])
        try other.exec("UPDATE api_keys SET last_used = 9")
        #expect(try server.changeToken() == start)
        // A writer that knows nothing of the counter (an older tollgate, sqlite3) still moves it: triggers do.
        try other.exec("UPDATE api_keys SET revoked = 7")
        let afterRevoke = try server.changeToken()
        #expect(afterRevoke != start)
        try other.exec("DELETE FROM api_keys")
        #expect(try server.changeToken() != afterRevoke)
    }

    @Test func theWatcherReloadsOnlyWhenTheKeysChanged() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/state/tollgate.db"
        let store = try SQLiteKeyStore(path: path)
        let other = try SQLiteDatabase(path: path, mode: .readWrite, busyTimeoutMillis: 1000)
        defer {
            store.close()
            other.close()
        }
        let ring = KeyRing()
        let token = APIKeyToken.generate()
        try store.insert(key(token))
        let watcher = try KeyWatcher(store: store, ring: ring, start: false)
        defer { watcher.stop() }
        try other.exec("CREATE TABLE ledger_like (n INTEGER); INSERT INTO ledger_like VALUES (1);")
        _ = ring.verify(token)
        watcher.flushLastUsed()
        #expect(!watcher.refresh())
        #expect(try store.revoke(id: token.id, at: 3))
        #expect(watcher.refresh())
        #expect(ring.verify(token) == .revoked(user: "alice"))
    }

    @Test func fleetRevocationsAreWrittenToTheServersOwnStore() throws {
        final class Fleet: FleetRevocations {
            let ids = Mutex<Set<String>?>(nil)
            func revokedSince() -> Set<String>? { ids.withLock { v in defer { v = nil }; return v } }
        }
        let dir = try makeTemporaryDirectory()
        let store = try SQLiteKeyStore(path: dir + "/state/tollgate.db")
        defer { store.close() }
        let token = APIKeyToken.generate()
        let kept = APIKeyToken.generate()
        try store.insert(key(token))
        try store.insert(key(kept))
        let fleet = Fleet()
        let watcher = try KeyWatcher(store: store, ring: KeyRing(), fleet: fleet, start: false)
        fleet.ids.withLock { $0 = [token.id, "unknownid234"] }
        watcher.refresh()
        watcher.stop()
        let stored = try store.all()
        #expect(stored.first { $0.id == token.id }?.revoked != nil)
        #expect(stored.first { $0.id == kept.id }?.revoked == nil)
        // A restart without Redis (no fleet) still refuses it.
        let ring = KeyRing()
        let restarted = try KeyWatcher(store: store, ring: ring, start: false)
        defer { restarted.stop() }
        #expect(ring.verify(token) == .revoked(user: "alice"))
        #expect(try store.revoke(ids: [token.id, kept.id], at: 9) == 1)
    }

    @Test func aKeyVerifiedFromAPrefixIsKnownByItsOwnHash() throws {
        let clock = TestClock()
        let auth = authenticator("alice:{PLAIN}pw\n", clock: clock)
        defer { auth.shutdown() }
        let ring = KeyRing()
        let token = APIKeyToken.generate()
        ring.replace(with: [key(token)])
        #expect(!auth.isKeyVerified(token, clientIP: "192.0.2.1"))
        #expect(auth.checkKey(token, claimedUser: nil, throttleUser: "tg_\(token.id)", clientIP: "192.0.2.1", ring: ring)
            == .allowed(KeyGrant(id: token.id, user: "alice", models: nil)))
        #expect(auth.isKeyVerified(token, clientIP: "192.0.2.1"))
        #expect(!auth.isKeyVerified(token, clientIP: "198.51.100.7"))
        #expect(!auth.isKeyVerified(APIKeyToken.generate(), clientIP: "192.0.2.1"))
        // The password stand-in (the user, no password) a key login carries is never verified.
        #expect(!auth.isVerified(Credentials(user: "alice", password: []), clientIP: "192.0.2.1"))
    }
}
