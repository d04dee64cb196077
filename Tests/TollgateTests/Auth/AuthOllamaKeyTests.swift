import Dispatch
import Synchronization
import Testing
import TollgateIO
@testable import Tollgate

/// A key as the `ollama` CLI holds it, and what the CLI sends for a request.
struct OllamaTestKey {
    let key: Ed25519PrivateKey
    let blob: [UInt8]

    init(seed: UInt8) {
        key = Ed25519PrivateKey(seed: [UInt8](repeating: seed, count: 32))
        blob = SSHEd25519.blob(raw: key.publicRaw)
    }

    /// The key's `authorized-keys` line for `user`.
    func line(_ user: String) -> String { "ssh-ed25519 \(Base64.encode(blob)) \(user)" }

    /// `Authorization` as the CLI sends it for `METHOD,PATH?ts=TS`.
    func authorization(_ method: String, _ path: String, ts: Int64) -> String {
        Base64.encode(blob) + ":" + Base64.encode(key.sign(Array("\(method),\(path)?ts=\(ts)".utf8)))
    }

    /// The parsed credential and the request as Tollgate sees it.
    func request(_ method: String, _ path: String, ts: Int64, signedPath: String? = nil,
                 signedTS: Int64? = nil) -> SignedRequest {
        let header = authorization(method, signedPath ?? path, ts: signedTS ?? ts)
        guard case .signed(let credential) = CredentialExtractor.extract(authorization: Array(header.utf8)[...],
                                                                        apiKey: nil) else {
            fatalError("not the signed form: \(header)")
        }
        return SignedRequest(credential: credential, method: method, path: path, query: Array("?ts=\(ts)".utf8)[...])
    }
}

/// A wall clock in Unix seconds the test moves by hand.
final class WallClock: Sendable {
    private let seconds = Atomic<Int64>(1_733_350_000)
    var now: Int64 { seconds.load(ordering: .relaxed) }
    var function: @Sendable () -> Int64 { { [self] in now } }
    func advance(_ by: Int64) { seconds.add(by, ordering: .relaxed) }
}

@Suite struct AuthOllamaKeyParsingTests {
    @Test func theSignedFormIsItsOwnCredentialKind() throws {
        let alice = OllamaTestKey(seed: 1)
        let header = alice.authorization("GET", "/api/tags", ts: 1_733_350_000)
        let parsed = CredentialExtractor.extract(authorization: Array(header.utf8)[...], apiKey: nil)
        guard case .signed(let credential) = parsed else {
            Issue.record("not parsed as signed: \(parsed)")
            return
        }
        #expect(credential.publicKey == alice.key.publicRaw)
        #expect(credential.blob == alice.blob)
        #expect(credential.signature.count == 64)
        // Surrounding blanks are trimmed as for every scheme.
        guard case .signed = CredentialExtractor.extract(authorization: Array("  \(header) ".utf8)[...], apiKey: nil) else {
            Issue.record("trimmed form not parsed")
            return
        }
    }

    @Test func malformedSignedFormsAreMalformedAndOtherSchemesUnchanged() {
        let alice = OllamaTestKey(seed: 1)
        let key = Base64.encode(alice.blob)
        let signature = Base64.encode([UInt8](repeating: 7, count: 64))
        let cases: [(String, String)] = [
            ("\(key):\(Base64.encode([UInt8](repeating: 7, count: 63)))", "64 bytes"),   // short signature
            ("\(key):not*base64", "64 bytes"),
            ("\(key.dropLast(4))AAA=:\(signature)", "not a valid ssh-ed25519"),            // blob cut short
            ("AAAAC3NzaC1lZDI1NTE5AAAAIA:\(signature)", "not a valid ssh-ed25519"),       // unpadded
            ("Digest \(key):\(signature)", "unsupported Authorization scheme"),           // a scheme and a blank
            ("AAAAB3NzaC1yc2E:\(signature)", "unsupported Authorization scheme"),          // an ssh-rsa key
        ]
        for (header, why) in cases {
            let parsed = CredentialExtractor.extract(authorization: Array(header.utf8)[...], apiKey: nil)
            guard case .malformed(let reason) = parsed else {
                Issue.record("\(header): \(parsed)")
                continue
            }
            #expect(reason.contains(why), "\(header): \(reason)")
        }
        #expect(CredentialExtractor.extract(authorization: Array("Bearer alice:pw".utf8)[...], apiKey: nil)
            == .found(Credentials(user: "alice", password: Array("pw".utf8)), .bearer))
    }

    @Test func fingerprintIsWhatSSHKeygenPrints() {
        // `ssh-keygen -lf` of the key with the 32-byte seed 00 01 … 1f.
        let key = Ed25519PrivateKey(seed: (0..<32).map { UInt8($0) })
        let blob = SSHEd25519.blob(raw: key.publicRaw)
        #expect(Base64.encode(blob) == "AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4")
        #expect(SSHEd25519.fingerprint(blob: blob) == "SHA256:lbmsoA0yIEcEiVDRnMWuzm+nV+3ZEEpVIURqFoeSspg")
        // And its signature matches an independent Ed25519 implementation's (Python's cryptography).
        #expect(Base64.encode(key.sign(Array("GET,/api/tags?ts=1733350000".utf8)))
            == "tWxgJjlkYIDUdsglUOPUbX+o05K5ECi9afX2eOrs3NMwwUcd1YeVi0IzlOZFFYUMd4UIt1C+s4nsDBTrUYHEBA==")
    }

    @Test func timestampIsTheOneTsParameterInPlainDigits() {
        func ts(_ query: String) -> String? {
            SignedRequest.timestamp(in: Array(query.utf8)[...]).map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(ts("?ts=1733350000") == "1733350000")
        #expect(ts("?a=1&ts=1733350000&b=2") == "1733350000")
        #expect(ts("ts=5") == "5")
        #expect(ts("") == nil)
        #expect(ts("?tsx=1") == nil)
        #expect(ts("?ts=") == nil)
        #expect(ts("?ts=-5") == nil)
        #expect(ts("?ts=1e9") == nil)
        #expect(ts("?ts=1&ts=1") == nil)
        #expect(ts("?ts=1234567890123") == nil)
        let request = OllamaTestKey(seed: 1).request("POST", "/api/generate", ts: 42)
        #expect(request.ts == 42)
        #expect(String(decoding: request.message, as: UTF8.self) == "POST,/api/generate?ts=42")
    }
}

@Suite struct AuthAuthorizedKeysFileTests {
    @Test func linesCommentsAndSkippedLinesWithFileAndLine() {
        let alice = OllamaTestKey(seed: 1), bob = OllamaTestKey(seed: 2), carol = OllamaTestKey(seed: 3)
        let dave = OllamaTestKey(seed: 4)
        let text = """
        # ollama keys
        \(alice.line("alice"))

          \(bob.line("bob"))\r
        ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC alice
        ssh-ed25519 AAAAnotakey= alice
        ssh-ed25519 \(Base64.encode(carol.blob))
        \(carol.line("carol")) extra words
        from="10.0.0.1" \(carol.line("carol"))
        \(alice.line("alice"))
        \(dave.line("dave"))
        \(dave.line("eve"))
        \(bob.line("bo:b"))
        """
        let keys = AuthorizedKeys.parse(text, path: "keys")
        #expect(Set(keys.keys.values.map(\.user)) == ["alice", "bob"])
        #expect(keys.entry(for: alice.key.publicRaw)?.line == 2)
        #expect(keys.entry(for: bob.key.publicRaw)?.fingerprint == SSHEd25519.fingerprint(blob: bob.blob))
        #expect(keys.entry(for: dave.key.publicRaw) == nil, "a key named for two users counts for neither")
        let warnings = keys.warnings.map(\.description)
        let expected = [
            "keys:5: \"ssh-rsa\" key: only ssh-ed25519 keys are accepted",
            "keys:6: the key is not a valid ssh-ed25519 public key",
            "keys:7: no user name after the key",
            "keys:8: more than one word after the key",
            "keys:9: malformed line",
            "keys:10: the same key is also on line 2",
            "keys:12: the same key is on line 11 for user \"dave\"",
            "keys:13: the user name is not valid UTF-8 or contains a colon",
        ]
        #expect(warnings.count == expected.count, "\(warnings)")
        for (warning, prefix) in zip(warnings, expected) {
            #expect(warning.hasPrefix(prefix), "\(warning)")
            #expect(warning.hasSuffix("; line ignored"), "\(warning)")
        }
        #expect(keys.summary == "2 key(s), 8 line(s) skipped")
        #expect(AuthorizedKeys.parse("", path: "keys").summary == "0 key(s)")
    }

    /// A small-order "key" (the identity point, or any of the eight) would let anyone sign anything: OpenSSL
    /// accepts R = identity, S = 0 for every message. Such a line is skipped with its file and line.
    @Test func smallOrderKeysAreSkippedWithFileAndLine() {
        var identity = [UInt8](repeating: 0, count: 32)
        identity[0] = 1
        var negativeOne = [UInt8](repeating: 0xFF, count: 32)
        negativeOne[0] = 0xEC
        negativeOne[31] = 0x7F
        var orderEight: [UInt8] = [0x26, 0xE8, 0x95, 0x8F, 0xC2, 0xB2, 0x27, 0xB0, 0x45, 0xC3, 0xF4, 0x89, 0xF2, 0xEF,
                                   0x98, 0xF0, 0xD5, 0xDF, 0xAC, 0x05, 0xD3, 0xC6, 0x33, 0x39, 0xB1, 0x38, 0x02, 0x88,
                                   0x6D, 0x53, 0xFC, 0x05]
        orderEight[31] |= 0x80    // the other sign of x: the same small-order y
        let alice = OllamaTestKey(seed: 1)
        let lines = [identity, negativeOne, orderEight, [UInt8](repeating: 0, count: 32)].map {
            "ssh-ed25519 \(Base64.encode(SSHEd25519.blob(raw: $0))) eve"
        }
        let keys = AuthorizedKeys.parse((lines + [alice.line("alice")]).joined(separator: "\n"), path: "keys")
        #expect(keys.keys.count == 1 && keys.entry(for: alice.key.publicRaw) != nil)
        #expect(keys.entry(for: identity) == nil)
        let warnings = keys.warnings.map(\.description)
        #expect(warnings.count == 4, "\(warnings)")
        for (i, warning) in warnings.enumerated() {
            #expect(warning.hasPrefix("keys:\(i + 1): the key is a small-order point"), "\(warning)")
        }
        // The forgery such a key would let through, for the record: R = identity, S = 0.
        var forged = [UInt8](repeating: 0, count: 64)
        forged[0] = 1
        if let key = Ed25519PublicKey(raw: identity), Ed25519Verifier().verify(forged, of: Array("GET,/x?ts=1".utf8), with: key) {
            #expect(AuthorizedKeys.hasSmallOrder(identity))
        }
        #expect(!AuthorizedKeys.hasSmallOrder(alice.key.publicRaw))
    }

    /// `ssh-ed25519 AAAA… alice@laptop` (a `.pub` line pasted whole): the line counts, with a warning that the
    /// third field is the Tollgate user.
    @Test func aUserNameWithAnAtIsWarnedAbout() {
        let alice = OllamaTestKey(seed: 1)
        let keys = AuthorizedKeys.parse("# keys\n\(alice.line("alice@laptop"))\n", path: "keys")
        #expect(keys.entry(for: alice.key.publicRaw)?.user == "alice@laptop")
        #expect(keys.warnings.count == 1)
        #expect(keys.warnings.first?.description.hasPrefix("keys:2: the user name \"alice@laptop\" looks like the comment") == true,
                "\(keys.warnings)")
        #expect(keys.summary == "1 key(s)")
    }
}

@Suite struct AuthSignedLoginTests {
    let alice = OllamaTestKey(seed: 1)
    let mallory = OllamaTestKey(seed: 9)
    let bob = OllamaTestKey(seed: 5)
    let users = UsersFile.parse("alice:{PLAIN}pw\ncarol:$unknown$x\nmallory:{PLAIN}pw\nbob:{PLAIN}pw\n", path: "users")

    func logins(_ clock: WallClock, capacity: Int = 100, perKey: Int = 100) -> SignedLogins {
        let text = [alice.line("alice"), OllamaTestKey(seed: 3).line("carol"), OllamaTestKey(seed: 4).line("ghost"),
                    bob.line("bob")]
        return SignedLogins(keys: AuthorizedKeys.parse(text.joined(separator: "\n"), path: "keys"),
                            replayCapacity: capacity, replayPerKey: perKey, clock: clock.function)
    }

    func check(_ logins: SignedLogins, _ request: SignedRequest, connection: UInt64? = 1,
               users: UsersFile? = nil) -> SignedLogins.Verdict {
        logins.check(request, users: users ?? self.users, connection: connection, verifier: Ed25519Verifier())
    }

    @Test func aFreshSignatureOfAListedKeyLogsInAsItsUser() {
        let clock = WallClock()
        let logins = logins(clock)
        let verdict = check(logins, alice.request("GET", "/api/tags", ts: clock.now))
        #expect(verdict == .allowed(user: "alice", secondsLeft: 300))
    }

    /// The key file names the user; the users file says whether that user exists: removing the user (`tollgate
    /// users remove`) revokes the key's login, admin rights and all.
    @Test func aKeyLogsInOnlyAsAUserOfTheUsersFile() {
        let clock = WallClock()
        let logins = logins(clock)
        #expect(check(logins, OllamaTestKey(seed: 4).request("GET", "/api/tags", ts: clock.now)) == .refused(.unknownUser))
        let removed = UsersFile.parse("bob:{PLAIN}pw\n", path: "users")
        #expect(check(logins, alice.request("POST", "/api/pull", ts: clock.now), users: removed) == .refused(.unknownUser))
        #expect(logins.replayCount == 0)
    }

    @Test func theTimestampWindowIsFiveMinutesEitherWay() {
        let clock = WallClock()
        let logins = logins(clock)
        let now = clock.now
        #expect(check(logins, alice.request("GET", "/a", ts: now - 300)) == .allowed(user: "alice", secondsLeft: 0))
        #expect(check(logins, alice.request("GET", "/b", ts: now + 300)) == .allowed(user: "alice", secondsLeft: 600))
        #expect(check(logins, alice.request("GET", "/c", ts: now - 301)) == .refused(.stale))
        #expect(check(logins, alice.request("GET", "/d", ts: now + 301)) == .refused(.stale))
        // Signed a minute ago: fine now, stale once the clock has moved on past the window.
        let request = alice.request("GET", "/e", ts: now - 60)
        clock.advance(241)
        #expect(check(logins, request) == .refused(.stale))
        // No ts in the query at all.
        var bare = alice.request("GET", "/f", ts: now)
        bare.ts = nil
        #expect(check(logins, bare) == .refused(.stale))
    }

    /// Through a trusted proxy the connection is no client's own (nil): the same signature again is a replay,
    /// even on that connection.
    @Test func aSignatureRepeatedOnASharedConnectionIsAReplay() {
        let clock = WallClock()
        let logins = logins(clock)
        let request = alice.request("GET", "/api/tags", ts: clock.now)
        #expect(check(logins, request, connection: nil) == .allowed(user: "alice", secondsLeft: 300))
        #expect(check(logins, request, connection: nil) == .refused(.replayed))
        #expect(check(logins, request, connection: 7) == .refused(.replayed))
    }

    /// The key is looked up when the signature is checked, not when the request's headers were read: a key
    /// removed in between (a live reload) is refused.
    @Test func aKeyRemovedBetweenLookupAndCheckIsRefused() {
        let clock = WallClock()
        let logins = logins(clock)
        let request = alice.request("GET", "/api/tags", ts: clock.now)
        #expect(logins.entry(for: request.credential)?.user == "alice")      // the headers phase's lookup
        logins.replaceKeys(AuthorizedKeys.parse(mallory.line("mallory"), path: "keys"))
        #expect(check(logins, request) == .refused(.unknownKey))
        // A key moved to another user logs in as that user.
        logins.replaceKeys(AuthorizedKeys.parse(alice.line("mallory"), path: "keys"))
        #expect(check(logins, alice.request("GET", "/api/ps", ts: clock.now)) == .allowed(user: "mallory", secondsLeft: 300))
    }

    /// One key signing as fast as it can fills only its own share of the replay cache: it gets 429 with the
    /// seconds until its oldest signature leaves the window; every other key still logs in.
    @Test func oneKeyCannotFillTheReplayCacheForEveryone() {
        let clock = WallClock()
        let logins = logins(clock, capacity: 10, perKey: 4)
        let future = clock.now + 300
        for i in 0..<4 {
            #expect(check(logins, bob.request("GET", "/x\(i)", ts: future)) == .allowed(user: "bob", secondsLeft: 600))
        }
        // Its oldest signature (ts now + 300) is kept until now + 600.
        #expect(check(logins, bob.request("GET", "/x4", ts: future)) == .keyOverShare(retryAfterSeconds: 601))
        clock.advance(599)
        #expect(check(logins, bob.request("GET", "/x5", ts: clock.now)) == .keyOverShare(retryAfterSeconds: 2))
        #expect(check(logins, alice.request("GET", "/api/tags", ts: clock.now)) == .allowed(user: "alice", secondsLeft: 300))
        #expect(logins.replayCount(of: bob.key.publicRaw) == 4)
        clock.advance(2)
        #expect(check(logins, bob.request("GET", "/x6", ts: clock.now)) == .allowed(user: "bob", secondsLeft: 300))
        #expect(logins.replayCount(of: bob.key.publicRaw) == 1)
    }

    @Test func aSignatureIsAcceptedOncePerConnectionWithinTheWindow() {
        let clock = WallClock()
        let logins = logins(clock)
        let request = alice.request("POST", "/api/chat", ts: clock.now)
        #expect(check(logins, request, connection: 7) == .allowed(user: "alice", secondsLeft: 300))
        // The CLI repeating the same request within the second on its own connection.
        clock.advance(1)
        #expect(check(logins, request, connection: 7) == .allowed(user: "alice", secondsLeft: 299))
        // Anyone else sending it again.
        #expect(check(logins, request, connection: 8) == .refused(.replayed))
        #expect(logins.replayCount == 1)
    }

    @Test func aBadSignatureOrAnotherKeysIsRefused() {
        let clock = WallClock()
        let logins = logins(clock)
        // Signed for another path, another method, another ts.
        #expect(check(logins, alice.request("GET", "/api/ps", ts: clock.now, signedPath: "/api/tags")) == .refused(.badSignature))
        #expect(check(logins, alice.request("POST", "/api/tags", ts: clock.now, signedTS: clock.now - 1)) == .refused(.badSignature))
        // Mallory's signature presented with alice's public key.
        let forged = mallory.request("GET", "/api/tags", ts: clock.now)
        var withAlicesKey = forged
        withAlicesKey.credential.publicKey = alice.key.publicRaw
        withAlicesKey.credential.blob = alice.blob
        #expect(check(logins, withAlicesKey) == .refused(.badSignature))
        // Mallory's own key is not listed.
        #expect(check(logins, forged) == .refused(.unknownKey))
        #expect(logins.replayCount == 0, "only verified signatures are remembered")
    }

    @Test func theKeyOfADisabledUserIsRefused() {
        let clock = WallClock()
        let logins = logins(clock)
        #expect(check(logins, OllamaTestKey(seed: 3).request("GET", "/api/tags", ts: clock.now)) == .refused(.disabledUser))
    }

    @Test func replacedKeysApplyToTheNextRequest() {
        let clock = WallClock()
        let logins = logins(clock)
        let before = logins.keysGeneration
        logins.replaceKeys(AuthorizedKeys.parse(mallory.line("mallory"), path: "keys"))
        #expect(logins.keysGeneration != before)
        #expect(check(logins, alice.request("GET", "/api/tags", ts: clock.now)) == .refused(.unknownKey))
        #expect(check(logins, mallory.request("GET", "/api/tags", ts: clock.now)) == .allowed(user: "mallory", secondsLeft: 300))
    }

    @Test func aFullReplayCacheRefusesUntilSignaturesLeaveTheWindow() {
        let clock = WallClock()
        let logins = logins(clock, capacity: 2, perKey: 2)
        let start = clock.now
        #expect(check(logins, alice.request("GET", "/1", ts: start)) == .allowed(user: "alice", secondsLeft: 300))
        #expect(check(logins, alice.request("GET", "/2", ts: start)) == .allowed(user: "alice", secondsLeft: 300))
        #expect(check(logins, bob.request("GET", "/3", ts: start)) == .refused(.overloaded))
        clock.advance(301)
        #expect(check(logins, alice.request("GET", "/3", ts: clock.now)) == .allowed(user: "alice", secondsLeft: 300))
        #expect(logins.replayCount == 1)
    }
}

@Suite struct AuthReplayCacheTests {
    @Test func bucketsReuseTheirSlotOnlyOutsideTheWindow() {
        var cache = ReplayCache(window: 2, capacity: 10, perKey: 10)
        let a = [UInt8](repeating: 1, count: 64), b = [UInt8](repeating: 2, count: 64), k = [UInt8](repeating: 3, count: 32)
        #expect(cache.insert(a, key: k, ts: 100, connection: 1, now: 100) == .fresh)
        #expect(cache.insert(a, key: k, ts: 100, connection: 1, now: 100) == .sameConnection)
        #expect(cache.insert(a, key: k, ts: 100, connection: 2, now: 101) == .replayed)
        // The same signature bytes at another ts are another entry (they could not verify for both anyway).
        #expect(cache.insert(a, key: k, ts: 101, connection: 2, now: 101) == .fresh)
        #expect(cache.insert(b, key: k, ts: 102, connection: 1, now: 102) == .fresh)
        #expect(cache.count == 3)
        // ts 106 shares ts 100's slot (ring of 2·2+2 = 6): that second has left the window, its entries go.
        #expect(cache.insert(b, key: k, ts: 106, connection: 1, now: 106) == .fresh)
        #expect(cache.count == 3)
        #expect(cache.insert(a, key: k, ts: 106, connection: 3, now: 106) == .fresh)
    }
}

@Suite struct AuthSignedThrottleTests {
    @Test func refusedSignaturesCountAsFailedLoginsAndThrottle() {
        let clock = TestClock()
        let auth = Authenticator(users: UsersFile.parse("alice:{PLAIN}pw\n", path: "users"),
                                 settings: Authenticator.Settings(workers: 1, failureLimit: 3), clock: clock.function)
        defer { auth.shutdown() }
        let key = LoginThrottle.Key(clientIP: "203.0.113.9", user: "alice")
        var verified = 0
        for _ in 0..<3 {
            #expect(auth.checkSigned(key, throttle: true) { verified += 1; return .refused(.badSignature) }
                == .refused(.badSignature))
        }
        // Throttled now: refused without running the check.
        guard case .throttled(let seconds) = auth.checkSigned(key, throttle: true, verify: { verified += 1; return .refused(.badSignature) }) else {
            Issue.record("not throttled after three failures")
            return
        }
        #expect(seconds > 0 && verified == 3)
        // The fleet's throttle decided (throttle: false): the check runs.
        #expect(auth.checkSigned(key, throttle: false) { .allowed(user: "alice", secondsLeft: 300) }
            == .allowed(user: "alice", secondsLeft: 300))
        // An overloaded replay cache is not the client's failure.
        let other = LoginThrottle.Key(clientIP: "198.51.100.1", user: "alice")
        for _ in 0..<5 { _ = auth.checkSigned(other, throttle: true) { .refused(.overloaded) } }
        #expect(auth.checkSigned(other, throttle: true) { .allowed(user: "alice", secondsLeft: 1) }
            == .allowed(user: "alice", secondsLeft: 1))
        #expect(auth.stats.denied == 3)
    }
}

@Suite struct AuthEd25519SharingTests {
    /// One key, as every worker shares it, verified from several threads at once, each with its own verifier.
    @Test func oneKeyVerifiesOnManyThreadsAtOnce() {
        let signer = Ed25519PrivateKey(seed: [UInt8](repeating: 5, count: 32))
        let key = Ed25519PublicKey(raw: signer.publicRaw)!
        let message = Array("GET,/api/tags?ts=1733350000".utf8)
        let signature = signer.sign(message)
        let forged = signature.enumerated().map { $0.offset == 10 ? $0.element ^ 1 : $0.element }
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let verifier = Ed25519Verifier()
            for _ in 0..<200 {
                if !verifier.verify(signature, of: message, with: key) { failures.add(1, ordering: .relaxed) }
                if verifier.verify(forged, of: message, with: key) { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(Ed25519PublicKey(raw: [1, 2, 3]) == nil)
        #expect(!Ed25519Verifier().verify([UInt8](repeating: 0, count: 63), of: message, with: key))
    }
}
