import Testing
@testable import Tollgate

/// The authenticator's single flight across a reload: a check that joins a hash already running answers under the
/// users it started with, like one that runs its own.
@Suite struct AuthLoginAttackAuthenticatorTests {
    /// The users file respells a name (same line otherwise) while its password is hashed: a check of the same
    /// credentials that starts after the reload joins that hash (same name sent, same stored hash), and must be
    /// allowed under the spelling in force when it started, the one every later login gets, not the one the hash
    /// started under: what is keyed by user outside the process (Redis, the ledger) compares bytes.
    @Test func aCheckJoiningAFlightAfterARespellingIsAllowedUnderTheNewSpelling() throws {
        let composed = "jos\u{E9}", decomposed = "jose\u{301}"
        let gate = Gate()
        let auth = Authenticator(users: UsersFile.parse("\(composed):{PLAIN}pw\n", path: "users"),
                                 settings: Authenticator.Settings(workers: 1, failureLimit: 0),
                                 clock: TestClock().function, onThrottle: nil, verifier: gate.verifier)
        defer { auth.shutdown() }
        let credentials = Credentials(user: composed, password: Array("pw".utf8))
        let first = Inbox<AuthOutcome>(), second = Inbox<AuthOutcome>()
        #expect(auth.check(credentials, clientIP: "192.0.2.1") { first.put($0) } == .pending)
        #expect(gate.entered.next() == "pw")
        auth.replaceUsers(UsersFile.parse("\(decomposed):{PLAIN}pw\n", path: "users"))
        #expect(auth.check(credentials, clientIP: "192.0.2.2") { second.put($0) } == .pending)
        #expect(auth.stats.collapsed == 1)
        gate.release()
        let started = try #require(first.next()), joined = try #require(second.next())
        #expect(Self.name(started) == Array(composed.utf8))
        #expect(Self.name(joined) == Array(decomposed.utf8), "joined the flight: \(joined)")
        // From the cache: the new spelling.
        #expect(Self.name(auth.check(credentials, clientIP: "192.0.2.3") { _ in }) == Array(decomposed.utf8))
    }

    private static func name(_ outcome: AuthOutcome) -> [UInt8]? {
        if case .allowed(let user) = outcome { return Array(user.utf8) }
        return nil
    }

    private static func name(_ check: Authenticator.Check) -> [UInt8]? {
        if case .done(let outcome) = check { return name(outcome) }
        return nil
    }
}
