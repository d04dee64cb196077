import Synchronization
import Testing
import TollgateIO
@testable import Tollgate

/// Reloads of the users against every way a login is remembered: a connection's `VerifiedLogin` (password forms and
/// API keys), the verified-credential cache (`Authenticator.check` answering on the spot), and the stand-in hash of
/// unknown names. A removed or changed user stops logging in on the next request, however it logged in before.
@Suite struct AuthLoginAttackReloadTests {
    /// One credential header form for a password.
    struct Form: Sendable, CustomTestStringConvertible {
        let name: String
        let header: @Sendable (String, String) -> String
        var testDescription: String { name }
    }

    static let forms: [Form] = [
        Form(name: "Basic", header: { Credential.basic($0, $1) }),
        Form(name: "Bearer user:password", header: { Credential.bearer($0, $1) }),
        Form(name: "x-api-key user:password", header: { Credential.apiKey($0, $1) }),
    ]

    /// A proxy whose first password check runs `reload` while it hashes (then it is a plain check); `hashes` counts
    /// every check that reached the hash.
    static func withReloadDuringFirstHash(users: String, forwardedFrom trusted: Bool = false,
                                          body: (Proxy, Authenticator, _ arm: (@escaping @Sendable () -> Void) -> Void,
                                                 _ hashes: () -> Int) throws -> Void) throws {
        let duringFirstHash = Mutex<(@Sendable () -> Void)?>(nil)
        let hashes = Atomic<Int>(0)
        try withProxyAndFake(configure: { config in
            config.users = UsersFile.parse(users, path: "users.htpasswd")
            config.authSettings = Authenticator.Settings(workers: 1, failureLimit: 0)
            if trusted { config.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!] }
            config.passwordVerifier = { password, hash, format in
                hashes.add(1, ordering: .relaxed)
                if let reload = duringFirstHash.withLock({ hook -> (@Sendable () -> Void)? in
                    defer { hook = nil }
                    return hook
                }) { reload() }
                return PasswordVerifier.verify(password: password, against: hash, format: format)
            }
        }) { proxy, _ in
            let auth = try #require(proxy.server.authenticator)
            try body(proxy, auth, { hook in duringFirstHash.withLock { $0 = hook } }, { hashes.load(ordering: .relaxed) })
        }
    }

    @Test(arguments: forms)
    func aUserRemovedWhileTheirPasswordIsHashedIsRefusedOnTheNextRequest(_ form: Form) throws {
        try Self.withReloadDuringFirstHash(users: "alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n") { proxy, auth, arm, hashes in
            arm { auth.replaceUsers(UsersFile.parse("bob:{PLAIN}pw-b\n", path: "users.htpasswd")) }
            let client = try proxy.tls()
            defer { client.close() }
            let alice = Req.get("/api/tags", form.header("alice", "pw-a"))
            #expect(try client.exchange(alice).status == 200)
            #expect(hashes() == 1)
            // Not remembered: checked again against the users without alice (a stand-in hash), and refused.
            #expect(try client.exchange(alice).status == 401)
            #expect(hashes() == 2)
            // A fresh connection: the cache knows alice's password right against her old line only.
            #expect(try proxy.fetch(alice).status == 401)
            #expect(try client.exchange(alice).status == 401)
        }
    }

    @Test(arguments: forms)
    func aPasswordChangedWhileItIsHashedIsCheckedAgainOnTheNextRequest(_ form: Form) throws {
        try Self.withReloadDuringFirstHash(users: "alice:{PLAIN}old-pw\n") { proxy, auth, arm, hashes in
            let before = auth.usersGeneration
            arm { auth.replaceUsers(UsersFile.parse("alice:{PLAIN}new-pw\n", path: "users.htpasswd")) }
            let client = try proxy.tls()
            defer { client.close() }
            let old = Req.get("/api/tags", form.header("alice", "old-pw"))
            // Verified against the users it started with, the reload landing during the hash.
            #expect(try client.exchange(old).status == 200)
            #expect(auth.usersGeneration == before + 1)
            #expect(hashes() == 1)
            // Same connection, same credentials: checked again, against the new users, and refused.
            #expect(try client.exchange(old).status == 401)
            #expect(hashes() == 2)
            #expect(try proxy.fetch(old).status == 401)
            #expect(try client.exchange(Req.get("/api/tags", form.header("alice", "new-pw"))).status == 200)
            #expect(hashes() == 3)
            // Remembered from here on: no further hash.
            #expect(try client.exchange(Req.get("/api/tags", form.header("alice", "new-pw"))).status == 200)
            #expect(hashes() == 3)
        }
    }

    /// Through a trusted proxy (X-Forwarded-For) the connection is shared by clients, but a reload still ends
    /// what it remembers.
    @Test func aRememberedLoginBehindATrustedProxyEndsWithTheReload() throws {
        try Self.withReloadDuringFirstHash(users: "alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n",
                                           forwardedFrom: true) { proxy, auth, arm, _ in
            arm { auth.replaceUsers(UsersFile.parse("bob:{PLAIN}pw-b\n", path: "users.htpasswd")) }
            let client = try proxy.tls()
            defer { client.close() }
            let alice = Credential.basic("alice", "pw-a")
            #expect(try client.exchange(Req.get("/api/tags", "X-Forwarded-For: 198.51.100.9\r\n" + alice)).status == 200)
            #expect(try client.exchange(Req.get("/api/tags", "X-Forwarded-For: 198.51.100.9\r\n" + alice)).status == 401)
            #expect(try client.exchange(Req.get("/api/tags", "X-Forwarded-For: 203.0.113.7\r\n" + alice)).status == 401)
        }
    }

    /// The cache-hit path (`check` answering `.done`): a password the cache knows right is refused once its user
    /// is gone, on a connection that remembered it and on a fresh one, with no hash computed for either; put back
    /// with the same line, the user is allowed from the cache again.
    @Test func aCachedRightPasswordStopsWithItsUsersRemoval() throws {
        try Self.withReloadDuringFirstHash(users: "alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n") { proxy, auth, _, hashes in
            let alice = Req.get("/api/tags", Credential.basic("alice", "pw-a"))
            let remembered = try proxy.tls()
            defer { remembered.close() }
            #expect(try remembered.exchange(alice).status == 200)
            #expect(try proxy.fetch(alice).status == 200)
            #expect(hashes() == 1)
            #expect(try authStats(proxy).cacheHits == 1)
            auth.replaceUsers(UsersFile.parse("bob:{PLAIN}pw-b\n", path: "users.htpasswd"))
            #expect(try remembered.exchange(alice).status == 401)
            #expect(try proxy.fetch(alice).status == 401)
            auth.replaceUsers(UsersFile.parse("bob:{PLAIN}pw-b\nalice:{PLAIN}pw-a\n", path: "users.htpasswd"))
            let hashesBefore = hashes()
            #expect(try proxy.fetch(alice).status == 200)
            #expect(hashes() == hashesBefore)
            // On two lines now: disabled, and the cached verdict for the single line no longer matches.
            auth.replaceUsers(UsersFile.parse("alice:{PLAIN}pw-a\nalice:{PLAIN}pw-a\n", path: "users.htpasswd"))
            #expect(try remembered.exchange(alice).status == 401)
            #expect(try proxy.fetch(alice).status == 401)
        }
    }

    /// Another spelling of a removed user finds nothing either (the users file lost the entry, not a form of it).
    @Test func anotherSpellingOfARemovedUserIsRefused() throws {
        try Self.withReloadDuringFirstHash(users: "jos\u{E9}:{PLAIN}pw-j\nbob:{PLAIN}pw-b\n") { proxy, auth, _, _ in
            let client = try proxy.tls()
            defer { client.close() }
            for name in ["jos\u{E9}", "jose\u{301}"] {
                #expect(try client.exchange(Req.get("/api/tags", Credential.basic(name, "pw-j"))).status == 200)
            }
            auth.replaceUsers(UsersFile.parse("bob:{PLAIN}pw-b\n", path: "users.htpasswd"))
            for name in ["jose\u{301}", "jos\u{E9}"] {
                #expect(try client.exchange(Req.get("/api/tags", Credential.basic(name, "pw-j"))).status == 401)
                #expect(try proxy.fetch(Req.get("/api/tags", Credential.basic(name, "pw-j"))).status == 401)
            }
        }
    }

    /// A stand-in hash never allows a login, even under a check that accepts every password, and its verdict is
    /// never cached as right.
    @Test func aStandInNeverAllowsEvenWhenTheCheckSaysYes() throws {
        let hashes = Atomic<Int>(0)
        try withProxyAndFake(configure: { config in
            config.users = UsersFile.parse("alice:{PLAIN}pw-a\n", path: "users.htpasswd")
            config.authSettings = Authenticator.Settings(workers: 1, failureLimit: 0)
            config.passwordVerifier = { _, _, _ in
                hashes.add(1, ordering: .relaxed)
                return true
            }
        }) { proxy, _ in
            for form in Self.forms {
                let client = try proxy.tls()
                defer { client.close() }
                for _ in 0..<2 {
                    #expect(try client.exchange(Req.get("/api/tags", form.header("mallory", "anything"))).status == 401)
                }
            }
            // One hash for the first, the cache's "wrong" for every later one.
            #expect(hashes.load(ordering: .relaxed) == 1)
            let stats = try authStats(proxy)
            #expect(stats.allowed == 0 && stats.dummyVerifications == 1)
            // The check hook itself works: a listed user is allowed with any password.
            #expect(try proxy.fetch(Req.get("/api/tags", Credential.basic("alice", "anything"))).status == 200)
        }
    }

    /// An API key login remembered on its connection ends when its user leaves the users file (the key itself is
    /// unchanged), for the bare key and for `user:key`.
    @Test func aKeyLoginRememberedOnItsConnectionEndsWhenItsUserIsRemoved() throws {
        let store = InMemoryKeyStore()
        let token = APIKeyToken.generate()
        try store.insert(APIKey(id: token.id, user: "alice", hash: token.hash, created: 1))
        try withProxyAndFake(keyStore: store, configure: { config in
            config.users = UsersFile.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n", path: "users.htpasswd")
            config.authSettings = Authenticator.Settings(workers: 1, failureLimit: 0)
        }) { proxy, _ in
            let auth = try #require(proxy.server.authenticator)
            let bare = try proxy.tls(), claimed = try proxy.tls()
            defer { bare.close(); claimed.close() }
            let headers = [(bare, AuthLoginAttack.keyHeader(token)), (claimed, AuthLoginAttack.keyHeader(token, claiming: "alice"))]
            for (client, header) in headers {
                for _ in 0..<2 { #expect(try client.exchange(Req.get("/api/tags", header)).status == 200) }
            }
            auth.replaceUsers(UsersFile.parse("bob:{PLAIN}pw-b\n", path: "users.htpasswd"))
            for (client, header) in headers {
                let refused = try client.exchange(Req.get("/api/tags", header))
                #expect(refused.status == 401)
                #expect(refused.text.contains("can no longer log in"), "\(refused.text)")
            }
        }
    }
}
