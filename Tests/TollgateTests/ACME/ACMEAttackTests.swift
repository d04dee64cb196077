import Foundation
import Glibc
import Synchronization
import Testing
import TollgateIO
import TollgateTestSupport
@testable import Tollgate

/// From the attack on automatic HTTPS, kept as regression tests (each failed while its bug existed): a CA (or a
/// clock) that hands out a certificate already in the last third of its lifetime, a store left with a new key beside
/// the old chain by a crash between the two renames of a save, and a link planted as the store's folder.
@Suite(.serialized) struct ACMEAttackTests {
    /// A certificate valid for 90 days from now (real time), as the CA would issue it, with its key.
    static func issued() throws -> IssuedCertificate { try ACMERenewalInfoTests.issued() }

    /// A CA that answers every order with a certificate already past two thirds of its lifetime (a broken CA, or a
    /// server clock 70 days ahead): each success is followed at once by another order, with no wait at all, so the
    /// thread orders in a tight loop until the CA's rate limits refuse it. One order, then a wait, is expected.
    @Test func aCertificateAlreadyDueIsNotOrderedInALoop() throws {
        let certificate = try Self.issued()
        // 70 days into the certificate's 90: past its renewal time (60 days), still valid, so `check` accepts it.
        let clock = ManualACMEClock(Int64(time(nil)) + 70 * 86_400)
        let store = ACMEStore(directory: try makeTemporaryDirectory() + "/acme")
        try store.prepare()
        let manager = ACMEManager(
            domains: ["a.tollgate.test"], store: store, caName: "scripted CA",
            issue: { () throws(ACMEError) in certificate },
            install: { (_: String, _: String) throws(SocketError) in }, clock: clock, random: { 0.5 })
        manager.start()
        defer { manager.stop() }
        // Either the thread settles (asleep until later) or it keeps ordering: whichever comes first.
        #expect(ACMERenewalInfoTests.waitFor {
            manager.attempts.load(ordering: .relaxed) >= 20
                || (manager.issuedCount.load(ordering: .relaxed) >= 1
                    && manager.nextAttempt.load(ordering: .relaxed) > clock.now())
        })
        let attempts = manager.attempts.load(ordering: .relaxed)
        #expect(attempts <= 2, "\(attempts) orders without the clock moving: the CA is hammered")
    }

    /// `save` renames the new key over key.pem, then the new chain over chain.pem: a crash (power loss, SIGKILL)
    /// between the two leaves the old chain beside the new key. The manager then sees a valid certificate for the
    /// names and planned its renewal 60 days away, so nothing repaired the pair (and `serve` started with it, and
    /// failed to build its TLS context). A pair whose key does not match is ordered again at once.
    @Test func aChainBesideAnotherKeyIsOrderedAgainAtOnce() throws {
        let old = try Self.issued()
        let new = try Self.issued()
        let store = ACMEStore(directory: try makeTemporaryDirectory() + "/acme")
        try store.prepare()
        try store.save(old, domains: ["a.tollgate.test"])
        // The crash: the new key renamed in, the chain still the old one.
        try Data(new.key).write(to: URL(fileURLWithPath: store.keyPath))
        // The store does not offer the pair as issued (serve then starts on another certificate).
        #expect(throws: SocketError.self, "the pair cannot be served") { _ = try store.issued() }

        let clock = ManualACMEClock()
        let manager = ACMEManager(
            domains: ["a.tollgate.test"], store: store, caName: "scripted CA",
            issue: { () throws(ACMEError) in new },
            install: { (_: String, _: String) throws(SocketError) in }, clock: clock, random: { 0.5 })
        manager.start()
        defer { manager.stop() }
        #expect(ACMERenewalInfoTests.waitFor {
            manager.nextAttempt.load(ordering: .relaxed) != 0 || manager.attempts.load(ordering: .relaxed) > 0
        })
        let planned = manager.nextAttempt.load(ordering: .relaxed)
        let ordered = manager.attempts.load(ordering: .relaxed) > 0 || planned <= clock.now()
        #expect(ordered, "next order planned \((planned - clock.now()) / 86_400) days away for a pair that cannot be served")
    }

    /// state-dir/acme planted as a symbolic link by someone who can write in state-dir: `prepare` takes the link's
    /// target as its folder, narrows the target's mode to 0700 (any directory, /etc included, when serve runs as
    /// root) and every key is then written there. A link (or anything not a real directory owned by this user) is
    /// expected to be refused, and the target left alone.
    @Test func aPlantedLinkForTheStoreIsRefused() throws {
        let state = try makeTemporaryDirectory()
        let elsewhere = try makeTemporaryDirectory()
        #expect(chmod(elsewhere, 0o755) == 0)
        #expect(symlink(elsewhere, state + "/acme") == 0)
        let store = ACMEStore(directory: ACMEStore.directory(inStateDirectory: state))
        let prepared = (try? store.prepare()) != nil
        var info = stat()
        #expect(stat(elsewhere, &info) == 0)
        #expect(!prepared, "prepare accepted state-dir/acme as a link to \(elsewhere)")
        #expect(info.st_mode & 0o777 == 0o755, "the link's target was chmodded to \(String(info.st_mode & 0o777, radix: 8))")
        if prepared {
            _ = try store.accountKey()
            #expect(access(elsewhere + "/account-key.pem", F_OK) != 0, "the account key was written through the link")
        }
    }
}
