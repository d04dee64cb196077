import Glibc
import Testing
import Tollgate

/// Live reload of the users file through the running proxy: a rename-replace takes effect without a restart and
/// without dropping the client's keep-alive connection; an unusable line disables only its user; an unreadable file
/// leaves the previous users in force.
@Suite struct AuthReloadTests {
    /// A proxy watching `file`, with throttling off (the polls below fail on purpose while waiting for a reload).
    static func withWatchingProxy(_ file: UsersFileOnDisk, body: (Proxy) throws -> Void) throws {
        let users = try UsersFile.load(path: file.path)
        try withProxyAndFake(configure: { config in
            config.users = users
            config.usersPath = file.path
            config.authSettings = Authenticator.Settings(workers: 2, failureLimit: 0)
        }) { proxy, _ in try body(proxy) }
    }

    /// Status of GET /api/tags with alice's `password` on `client`.
    static func status(_ client: HTTPClient, _ password: String) throws -> Int {
        try client.exchange(Req.get("/api/tags", Credential.basic("alice", password))).status
    }

    @Test func renameReplaceChangesAPasswordLive() throws {
        let file = try UsersFileOnDisk("alice:\(try TestUsers.bcrypt("old-pw"))\nbob:{PLAIN}hunter2\n")
        try Self.withWatchingProxy(file) { proxy in
            let client = try proxy.tls()
            defer { client.close() }
            #expect(try Self.status(client, "old-pw") == 200)
            #expect(try Self.status(client, "new-pw") == 401)

            try file.replace(with: "# rotated\nalice:\(try TestUsers.bcrypt("new-pw"))\nbob:{PLAIN}hunter2\n")
            let reloaded = try waitUntil { try Self.status(client, "new-pw") == 200 }
            #expect(reloaded, "the new password was never accepted")
            // The same keep-alive connection carried every request: the reload dropped nothing.
            #expect(try Self.status(client, "old-pw") == 401)
            #expect(try Self.status(client, "new-pw") == 200)
            #expect(try client.exchange(Req.get("/api/tags", Credential.basic("bob", "hunter2"))).status == 200)

            // A removed user is refused as soon as the file says so.
            try file.replace(with: "alice:\(try TestUsers.bcrypt("new-pw"))\n")
            let removed = try waitUntil {
                try client.exchange(Req.get("/api/tags", Credential.basic("bob", "hunter2"))).status == 401
            }
            #expect(removed, "a removed user kept access")
        }
    }

    /// A live edit that adds a line Tollgate cannot use (as nginx admins paste them) disables that user only: the
    /// users added by the same edit, and everyone else, keep working.
    @Test func anUnusableLineInALiveEditDisablesOnlyItsUser() throws {
        let file = try UsersFileOnDisk("alice:{PLAIN}first\n")
        try Self.withWatchingProxy(file) { proxy in
            let client = try proxy.tls()
            defer { client.close() }
            #expect(try Self.status(client, "first") == 200)

            try file.replace(with: "alice:{PLAIN}second\nmallory:{MD4}abc\nthis line has no colon\n"
                + "carol:\(try TestUsers.bcrypt("carol-pw"))\n")
            let carol = Req.get("/api/tags", Credential.basic("carol", "carol-pw"))
            #expect(try waitUntil { try client.exchange(carol).status == 200 }, "the edit was never loaded")
            #expect(try Self.status(client, "second") == 200)
            #expect(try Self.status(client, "first") == 401)
            #expect(try client.exchange(Req.get("/api/tags", Credential.basic("mallory", "abc"))).status == 401)
            let users = try #require(proxy.server.authenticator).users
            #expect(users.entries.keys.sorted() == ["alice", "carol"])
            #expect(users.disabled.map(\.line) == [2, 3])
        }
    }

    @Test func anUnreadableUsersFileKeepsThePreviousUsers() throws {
        let file = try UsersFileOnDisk("alice:{PLAIN}first\n")
        try Self.withWatchingProxy(file) { proxy in
            let client = try proxy.tls()
            defer { client.close() }
            #expect(try Self.status(client, "first") == 200)

            // The file replaced by a directory: nothing to read, so the users in force stay.
            #expect(unlink(file.path) == 0 && mkdir(file.path, 0o700) == 0)
            var changed = false
            _ = try waitUntil(timeoutSeconds: 2, pollMillis: 50) {
                if try Self.status(client, "first") != 200 { changed = true }
                return changed
            }
            #expect(!changed, "an unreadable users file took effect")

            // The watcher survived: a readable file again takes effect.
            #expect(rmdir(file.path) == 0)
            try file.replace(with: "alice:{PLAIN}second\n")
            #expect(try waitUntil { try Self.status(client, "second") == 200 }, "the fixed file was never loaded")
            #expect(try Self.status(client, "first") == 401)
        }
    }

    @Test func inPlaceRewriteAndDeleteRecreateAreSeenToo() throws {
        let file = try UsersFileOnDisk("alice:{PLAIN}one\n")
        try Self.withWatchingProxy(file) { proxy in
            let client = try proxy.tls()
            defer { client.close() }
            #expect(try Self.status(client, "one") == 200)
            try file.rewriteInPlace(with: "alice:{PLAIN}two\n")
            #expect(try waitUntil { try Self.status(client, "two") == 200 }, "an in-place rewrite was never loaded")
            #expect(try Self.status(client, "one") == 401)
            try file.deleteAndRecreate(with: "alice:\(try TestUsers.bcrypt("three"))\n")
            #expect(try waitUntil { try Self.status(client, "three") == 200 }, "a recreated file was never loaded")
            #expect(try Self.status(client, "two") == 401)
        }
    }
}
