import Synchronization
import Testing
@testable import Tollgate

/// The credential check's users lookup: which stored hash each presented name is verified against, for names the
/// users file holds, names it does not hold as a usable entry, names it holds in another Unicode form, and across
/// reloads.
@Suite struct AuthUserLookupTests {
    private func users(_ text: String) -> UsersFile {
        UsersFile.parse(text, path: "users.htpasswd")
    }

    /// A password check that records every stored hash it is asked about, then really verifies.
    private final class Recorder: Sendable {
        private let hashes = Mutex<[String]>([])

        var verifier: @Sendable ([UInt8], String, HashFormat) -> Bool {
            { [self] password, hash, format in
                hashes.withLock { $0.append(hash) }
                return PasswordVerifier.verify(password: password, against: hash, format: format)
            }
        }

        /// The hashes asked about, in order.
        var seen: [String] { hashes.withLock { $0 } }
    }

    private func authenticator(_ file: UsersFile, _ recorder: Recorder) -> Authenticator {
        Authenticator(users: file, settings: Authenticator.Settings(workers: 1, failureLimit: 100),
                      clock: TestClock().function, onThrottle: nil, verifier: recorder.verifier)
    }

    @Test func namesWithoutAUsableEntryAreVerifiedAgainstTheFilesStandIn() throws {
        let recorder = Recorder()
        let file = users("alice:{PLAIN}pw\nbob:\(Fixture.sha1)\ncarol:not-a-hash\ndave:{PLAIN}a\ndave:{PLAIN}b\n")
        #expect(Set(file.entries.keys) == ["alice", "bob"])
        let auth = authenticator(file, recorder)
        defer { auth.shutdown() }
        // Empty, disabled (unknown hash format), on two lines, never listed: each costs one stand-in verification.
        let attempts = [("", "pw"), ("carol", "not-a-hash"), ("dave", "a"), ("dave", "b"), ("mallory", "pw")]
        for (name, password) in attempts {
            #expect(checkAndWait(auth, name, password) == .denied)
            #expect(!auth.isVerified(Credentials(user: name, password: Array(password.utf8)), clientIP: "192.0.2.1"))
        }
        let expected = attempts.map { file.standIn(for: $0.0).hash }
        #expect(recorder.seen == expected)
        #expect(!recorder.seen.contains { hash in file.entries.values.contains { $0.hash == hash } })
        #expect(auth.stats.dummyVerifications == attempts.count)
        #expect(auth.stats.hashesComputed == attempts.count)
        // A listed user is verified against the entry's own hash and counts no stand-in.
        #expect(checkAndWait(auth, "bob", "pw") == .allowed(user: "bob"))
        #expect(recorder.seen.last == Fixture.sha1)
        #expect(auth.stats.dummyVerifications == attempts.count)
    }

    @Test func aReloadThatRemovesOrChangesAUserEndsItsCachedVerdict() throws {
        let recorder = Recorder()
        let before = users("alice:{PLAIN}pw\nbob:\(Fixture.sha1)\n")
        let auth = authenticator(before, recorder)
        defer { auth.shutdown() }
        let alice = Credentials(user: "alice", password: Array("pw".utf8))
        #expect(checkAndWait(auth, "alice", "pw") == .allowed(user: "alice"))
        #expect(auth.isVerified(alice, clientIP: "192.0.2.1"))

        let removed = users("bob:\(Fixture.sha1)\n")
        auth.replaceUsers(removed)
        #expect(!auth.isVerified(alice, clientIP: "192.0.2.1"))
        #expect(checkAndWait(auth, "alice", "pw") == .denied)
        // Verified against the new file's stand-in, not the removed line's hash nor the old file's stand-in.
        #expect(recorder.seen.last == removed.standIn(for: "alice").hash)
        #expect(auth.stats.dummyVerifications == 1)

        auth.replaceUsers(users("alice:{PLAIN}pw2\nbob:\(Fixture.sha1)\n"))
        #expect(checkAndWait(auth, "alice", "pw") == .denied)
        #expect(recorder.seen.last == "{PLAIN}pw2")
        #expect(!auth.isVerified(alice, clientIP: "192.0.2.1"))
        #expect(checkAndWait(auth, "alice", "pw2") == .allowed(user: "alice"))
        #expect(auth.stats.dummyVerifications == 1)
        #expect(auth.stats.hashesComputed == 4)
    }

    /// The user an outcome allows, as bytes (`==` on `String` would not tell two spellings apart).
    private func allowedName(_ outcome: AuthOutcome?) -> [UInt8]? {
        if case .allowed(let user) = outcome { return Array(user.utf8) }
        return nil
    }

    @Test func theLookupMatchesNamesAsSwiftStringsCompareThem() throws {
        // The entries are keyed by String, and Swift compares strings by canonical equivalence: a name sent
        // decomposed finds the entry written composed. The check and isVerified look up the same way, and each form
        // is its own cache entry (the cache key has the name's bytes). The outcome names the user as the users file
        // writes it, whatever the spelling sent: quotas, leases and the ledger are keyed by it, in Redis and SQLite,
        // which compare bytes.
        let recorder = Recorder()
        let composed = "jos\u{E9}"
        let decomposed = "jose\u{301}"
        #expect(Array(composed.utf8) != Array(decomposed.utf8))
        let auth = authenticator(users("\(composed):{PLAIN}pw\n"), recorder)
        defer { auth.shutdown() }
        #expect(allowedName(checkAndWait(auth, decomposed, "pw")) == Array(composed.utf8))
        #expect(recorder.seen == ["{PLAIN}pw"])
        #expect(auth.isVerified(Credentials(user: decomposed, password: Array("pw".utf8)), clientIP: "192.0.2.1"))
        #expect(!auth.isVerified(Credentials(user: composed, password: Array("pw".utf8)), clientIP: "192.0.2.1"))
        // Answered from the cache this time: the same name.
        #expect(allowedName(checkAndWait(auth, decomposed, "pw")) == Array(composed.utf8))
        #expect(recorder.seen == ["{PLAIN}pw"])
        #expect(allowedName(checkAndWait(auth, composed, "pw")) == Array(composed.utf8))
        #expect(checkAndWait(auth, decomposed, "wrong") == .denied)
        #expect(recorder.seen == ["{PLAIN}pw", "{PLAIN}pw", "{PLAIN}pw"])
        #expect(auth.stats.dummyVerifications == 0)
        // The fleet's throttle counts every name in its NFC form, listed or not.
        #expect(Array(SharedLoginThrottleStore.fleetName(decomposed).utf8) == Array(composed.utf8))
        #expect(Array(SharedLoginThrottleStore.fleetName(composed).utf8) == Array(composed.utf8))
        #expect(Array(SharedLoginThrottleStore.fleetName("zoe\u{308}").utf8) == Array("zo\u{EB}".utf8))
        #expect(Array(SharedLoginThrottleStore.fleetName("\u{212A}elvin").utf8) == Array("Kelvin".utf8))
        #expect(Array(SharedLoginThrottleStore.fleetName("alice").utf8) == Array("alice".utf8))
    }

    @Test func aStandInThatMatchesStillAllowsNoOne() throws {
        // The stand-in hash an unknown name is checked against is random, so no password matches it. Were a
        // verifier to say it matched, the name is still no user: denied, and not cached as right.
        let auth = Authenticator(users: users("alice:{PLAIN}pw\n"),
                                 settings: Authenticator.Settings(workers: 1, failureLimit: 100),
                                 clock: TestClock().function, onThrottle: nil, verifier: { _, _, _ in true })
        defer { auth.shutdown() }
        #expect(checkAndWait(auth, "mallory", "anything") == .denied)
        #expect(checkAndWait(auth, "mallory", "anything") == .denied)
        #expect(!auth.isVerified(Credentials(user: "mallory", password: Array("anything".utf8)), clientIP: "192.0.2.1"))
        #expect(auth.stats.dummyVerifications == 1)
        #expect(auth.stats.allowed == 0)
        #expect(checkAndWait(auth, "alice", "whatever") == .allowed(user: "alice"))
    }
}
