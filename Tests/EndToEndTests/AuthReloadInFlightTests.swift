import Synchronization
import Testing
@testable import Tollgate

/// A users reload that lands while a password is being hashed: the request that started before it finishes, as any
/// request in flight does, but its login is not remembered as checked against the new users.
@Suite struct AuthReloadInFlightTests {
    @Test func aLoginCheckedAcrossAReloadIsCheckedAgainOnItsNextRequest() throws {
        // The first hash computed replaces the users (alice's password changes) before it answers: the check is then
        // in flight across the reload, deterministically.
        let duringFirstHash = Mutex<(@Sendable () -> Void)?>(nil)
        let hashes = Atomic<Int>(0)
        try withProxyAndFake(configure: { config in
            config.users = UsersFile.parse("alice:{PLAIN}old-pw\n", path: "users.htpasswd")
            config.authSettings = Authenticator.Settings(workers: 1, failureLimit: 0)
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
            let before = auth.usersGeneration
            duringFirstHash.withLock { hook in
                hook = { auth.replaceUsers(UsersFile.parse("alice:{PLAIN}new-pw\n", path: "users.htpasswd")) }
            }
            let client = try proxy.tls()
            defer { client.close() }
            let old = Req.get("/api/tags", Credential.basic("alice", "old-pw"))
            // Verified against the users it started with.
            #expect(try client.exchange(old).status == 200)
            #expect(auth.usersGeneration == before + 1)
            #expect(hashes.load(ordering: .relaxed) == 1)
            // Same connection, same credentials: checked again, against the new users, and refused.
            #expect(try client.exchange(old).status == 401)
            #expect(hashes.load(ordering: .relaxed) == 2)
            #expect(try client.exchange(Req.get("/api/tags", Credential.basic("alice", "new-pw"))).status == 200)
            // Remembered from here on: no further hash.
            #expect(try client.exchange(Req.get("/api/tags", Credential.basic("alice", "new-pw"))).status == 200)
            #expect(hashes.load(ordering: .relaxed) == 3)
        }
    }
}
