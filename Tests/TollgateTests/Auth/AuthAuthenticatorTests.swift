import Synchronization
import Testing
import TollgateIO
@testable import Tollgate

@Suite struct AuthAuthenticatorTests {
    private func users(_ text: String) throws -> UsersFile {
        UsersFile.parse(text, path: "users.htpasswd")
    }

    private func settings(workers: Int = 2, queueLimit: Int = 256, failureLimit: Int = 10) -> Authenticator.Settings {
        Authenticator.Settings(workers: workers, queueLimit: queueLimit, failureLimit: failureLimit)
    }

    @Test func cacheHitSkipsHashingForBothOutcomes() throws {
        let auth = Authenticator(users: try users("alice:\(Fixture.bcrypt5)\n"), settings: settings())
        defer { auth.shutdown() }
        #expect(checkAndWait(auth, "alice", "secret") == .allowed(user: "alice"))
        #expect(auth.stats.hashesComputed == 1)
        let again = auth.check(Credentials(user: "alice", password: Array("secret".utf8)), clientIP: "192.0.2.1") { _ in
            Issue.record("a cache hit must not call the completion")
        }
        #expect(again == .done(.allowed(user: "alice")))
        #expect(checkAndWait(auth, "alice", "wrong") == .denied)
        #expect(checkAndWait(auth, "alice", "wrong") == .denied)
        let stats = auth.stats
        #expect(stats.hashesComputed == 2)
        #expect(stats.cacheHits == 2)
        #expect(stats.allowed == 2)
        #expect(stats.denied == 2)
    }

    @Test func anEditedLineInvalidatesOnlyThatUsersEntries() throws {
        let auth = Authenticator(users: try users("alice:{PLAIN}old\nbob:{PLAIN}b\n"), settings: settings())
        defer { auth.shutdown() }
        #expect(checkAndWait(auth, "alice", "old") == .allowed(user: "alice"))
        #expect(checkAndWait(auth, "bob", "b") == .allowed(user: "bob"))
        auth.replaceUsers(try users("alice:{PLAIN}new\nbob:{PLAIN}b\n"))
        #expect(checkAndWait(auth, "alice", "old") == .denied)
        #expect(checkAndWait(auth, "alice", "new") == .allowed(user: "alice"))
        #expect(checkAndWait(auth, "bob", "b") == .allowed(user: "bob"))
        #expect(auth.stats.hashesComputed == 4)      // bob's entry survived the reload
        auth.replaceUsers(try users("alice:{PLAIN}new\n"))
        #expect(checkAndWait(auth, "bob", "b") == .denied)
    }

    @Test func unknownUserCostsOneDummyVerificationAndIsDenied() throws {
        let auth = Authenticator(users: try users("alice:\(Fixture.bcrypt5)\n"), settings: settings())
        defer { auth.shutdown() }
        #expect(checkAndWait(auth, "mallory", "secret") == .denied)
        #expect(auth.stats.hashesComputed == 1)
        #expect(auth.stats.dummyVerifications == 1)
        #expect(checkAndWait(auth, "alice", "nope") == .denied)
        #expect(auth.stats.dummyVerifications == 1)
        #expect(auth.users.dummyFormat == .bcrypt(cost: 5))
    }

    @Test func concurrentIdenticalChecksShareOneHash() throws {
        let gate = Gate()
        let auth = Authenticator(users: try users("alice:\(Fixture.bcrypt5)\n"), settings: settings(workers: 1),
                                 clock: { Syscall.monotonicNanos() }, onThrottle: nil, verifier: gate.verifier)
        defer { auth.shutdown() }
        let inbox = Inbox<AuthOutcome>()
        let credentials = Credentials(user: "alice", password: Array("secret".utf8))
        #expect(auth.check(credentials, clientIP: "192.0.2.1") { inbox.put($0) } == .pending)
        #expect(gate.entered.next() == "secret")
        for i in 0..<49 {
            #expect(auth.check(credentials, clientIP: "192.0.2.\(i + 2)") { inbox.put($0) } == .pending)
        }
        gate.release()
        for _ in 0..<50 { #expect(inbox.next() == .allowed(user: "alice")) }
        #expect(auth.stats.hashesComputed == 1)
        #expect(auth.stats.collapsed == 49)
    }

    @Test func aFullQueueAnswersOverloaded() throws {
        let gate = Gate()
        let auth = Authenticator(users: try users("alice:{PLAIN}pw\n"), settings: settings(workers: 1, queueLimit: 2),
                                 clock: { Syscall.monotonicNanos() }, onThrottle: nil, verifier: gate.verifier)
        defer { auth.shutdown() }
        let inbox = Inbox<AuthOutcome>()
        func check(_ password: String) -> Authenticator.Check {
            auth.check(Credentials(user: "alice", password: Array(password.utf8)), clientIP: "192.0.2.1") { inbox.put($0) }
        }
        #expect(check("p0") == .pending)
        #expect(gate.entered.next() == "p0")          // the worker is busy; the queue is empty
        #expect(check("p1") == .pending)
        #expect(check("p2") == .pending)
        #expect(auth.stats.queued == 2)
        #expect(check("p3") == .done(.overloaded))
        #expect(check("p1") == .pending)               // joins the queued p1: no queue slot needed
        #expect(auth.stats.overloaded == 1)
        gate.release(3)
        for _ in 0..<4 { #expect(inbox.next() == .denied) }
        #expect(check("pw") == .pending)
        gate.release()
        #expect(inbox.next() == .allowed(user: "alice"))
    }

    @Test func inFlightChecksFinishWithTheUsersTheyStartedWith() throws {
        let gate = Gate()
        let auth = Authenticator(users: try users("alice:{PLAIN}old\n"), settings: settings(workers: 1),
                                 clock: { Syscall.monotonicNanos() }, onThrottle: nil, verifier: gate.verifier)
        defer { auth.shutdown() }
        let inbox = Inbox<AuthOutcome>()
        _ = auth.check(Credentials(user: "alice", password: Array("old".utf8)), clientIP: "192.0.2.1") { inbox.put($0) }
        #expect(gate.entered.next() == "old")
        auth.replaceUsers(try users("alice:{PLAIN}new\n"))
        gate.release()
        #expect(inbox.next() == .allowed(user: "alice"))
        gate.release()
        #expect(checkAndWait(auth, "alice", "old") == .denied)
    }

    @Test func failuresThrottleAUserFromOneAddressUntilTheWindowPasses() throws {
        let clock = TestClock()
        let logged = Inbox<String>()
        let auth = Authenticator(users: try users("alice:{PLAIN}pw\nbob:{PLAIN}pw-b\n"),
                                 settings: settings(failureLimit: 3), clock: clock.function,
                                 onThrottle: { subject, seconds in logged.put("\(subject) \(seconds)") })
        defer { auth.shutdown() }
        let attacker = "203.0.113.9"
        #expect(checkAndWait(auth, "alice", "guess1", ip: attacker) == .denied)
        clock.advance(seconds: 10)
        #expect(checkAndWait(auth, "alice", "guess2", ip: attacker) == .denied)
        #expect(checkAndWait(auth, "alice", "guess3", ip: attacker) == .denied)
        #expect(logged.next() == "203.0.113.9, user \"alice\" 50")
        // alice's right password, never verified yet, is not checked from there: it could be a guess.
        #expect(checkAndWait(auth, "alice", "pw", ip: attacker) == .throttled(retryAfterSeconds: 50))
        #expect(checkAndWait(auth, "alice", "pw", ip: "198.51.100.1") == .allowed(user: "alice"))
        // bob behind the same address is not locked out by failures for alice.
        #expect(checkAndWait(auth, "bob", "pw-b", ip: attacker) == .allowed(user: "bob"))
        clock.advance(seconds: 30)
        #expect(checkAndWait(auth, "alice", "guess4", ip: attacker) == .throttled(retryAfterSeconds: 20))
        #expect(auth.stats.throttled == 2)
        clock.advance(seconds: 20)
        #expect(checkAndWait(auth, "alice", "guess5", ip: attacker) == .denied)
        #expect(checkAndWait(auth, "alice", "guess6", ip: attacker) == .throttled(retryAfterSeconds: 10))
    }

    @Test func aVerifiedCredentialIsNotRefusedForFailuresItDidNotCause() throws {
        let clock = TestClock()
        let logged = Inbox<String>()
        let auth = Authenticator(users: try users("alice:{PLAIN}pw\nbob:{PLAIN}pw-b\n"),
                                 settings: settings(failureLimit: 2), clock: clock.function,
                                 onThrottle: { subject, _ in logged.put(subject) })
        defer { auth.shutdown() }
        let nat = "2001:db8:5:5::10"
        #expect(checkAndWait(auth, "alice", "pw", ip: nat) == .allowed(user: "alice"))
        // Someone else in the same /64 guesses alice's password and then sprays other names.
        for i in 0..<2 { #expect(checkAndWait(auth, "alice", "guess\(i)", ip: "2001:db8:5:5::99") == .denied) }
        #expect(logged.next() == "2001:db8:5:5::/64, user \"alice\"")
        for i in 0..<4 { #expect(checkAndWait(auth, "user\(i)", "x", ip: "2001:db8:5:5::\(i + 100)") == .denied) }
        #expect(logged.next() == "2001:db8:5:5::/64, every user")
        // The whole /64 is throttled for anything not already verified...
        #expect(checkAndWait(auth, "bob", "pw-b", ip: nat) == .throttled(retryAfterSeconds: 60))
        #expect(checkAndWait(auth, "alice", "guess0", ip: nat) == .throttled(retryAfterSeconds: 60))
        // ...but alice's verified credential still works from there, from any address of that /64.
        #expect(checkAndWait(auth, "alice", "pw", ip: nat) == .allowed(user: "alice"))
        #expect(checkAndWait(auth, "alice", "pw", ip: "2001:db8:5:5::77") == .allowed(user: "alice"))
        #expect(checkAndWait(auth, "bob", "pw-b", ip: "2001:db8:5:6::1") == .allowed(user: "bob"))
    }

    @Test func aThrottledClientElsewhereCannotTestGuessesAgainstACachedPassword() throws {
        let auth = Authenticator(users: try users("alice:{PLAIN}pw\n"), settings: settings(failureLimit: 2),
                                 clock: TestClock().function)
        defer { auth.shutdown() }
        #expect(checkAndWait(auth, "alice", "pw", ip: "198.51.100.1") == .allowed(user: "alice"))
        let attacker = "203.0.113.66"
        for guess in ["a", "b"] { #expect(checkAndWait(auth, "alice", guess, ip: attacker) == .denied) }
        // The right password is in the cache, verified from alice's address: from the attacker's it is refused
        // like any other guess, so a throttled client learns nothing about it.
        #expect(checkAndWait(auth, "alice", "pw", ip: attacker) == .throttled(retryAfterSeconds: 60))
        #expect(auth.isVerified(Credentials(user: "alice", password: Array("pw".utf8)), clientIP: "198.51.100.1"))
        #expect(!auth.isVerified(Credentials(user: "alice", password: Array("pw".utf8)), clientIP: attacker))
        #expect(checkAndWait(auth, "alice", "pw", ip: "198.51.100.1") == .allowed(user: "alice"))
    }

    @Test func unknownUsersAreCheckedAgainstAStandInOfAnExistingCost() throws {
        let auth = Authenticator(users: try users("alice:{PLAIN}pw\nbob:\(Fixture.sha1)\n"), settings: settings())
        defer { auth.shutdown() }
        #expect(checkAndWait(auth, "mallory", "pw") == .denied)
        #expect(auth.stats.dummyVerifications == 1)
        let standIn = auth.users.standIn(for: "mallory")
        #expect(standIn.format == .plain || standIn.format == .sha1)
    }

    @Test func cachedVerdictsExpireWithTheInjectedClock() throws {
        let clock = TestClock()
        var s = settings()
        s.cacheTTLSeconds = 300
        let auth = Authenticator(users: try users("alice:{PLAIN}pw\n"), settings: s, clock: clock.function)
        defer { auth.shutdown() }
        #expect(checkAndWait(auth, "alice", "pw") == .allowed(user: "alice"))
        clock.advance(seconds: 299)
        #expect(checkAndWait(auth, "alice", "pw") == .allowed(user: "alice"))
        #expect(auth.stats.hashesComputed == 1)
        clock.advance(seconds: 1)
        #expect(checkAndWait(auth, "alice", "pw") == .allowed(user: "alice"))
        #expect(auth.stats.hashesComputed == 2)
    }

    @Test func afterShutdownChecksAreOverloaded() throws {
        let auth = Authenticator(users: try users("alice:{PLAIN}pw\n"), settings: settings())
        auth.shutdown()
        auth.shutdown()
        let answer = auth.check(Credentials(user: "alice", password: Array("pw".utf8)), clientIP: "192.0.2.1") { _ in }
        #expect(answer == .done(.overloaded))
    }
}
