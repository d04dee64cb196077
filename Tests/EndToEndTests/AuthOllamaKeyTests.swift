import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// Logins with the `ollama` CLI's own keys through the running proxy over TLS: served as the key's user with its
/// rights, `ts` forwarded and the header not, refusals (replay, stale, unknown key, bad signature) as 401 in the
/// caller's API shape, and refusals counted by the failed-login throttle.
@Suite struct AuthOllamaKeyTests {
    private static let alice = OllamaCLIKey(seed: 1)
    private static let dave = OllamaCLIKey(seed: 2)
    private static let stranger = OllamaCLIKey(seed: 3)

    private static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

    /// The words of every failed signed login's 401, whatever the reason.
    private static let refusal = "ollama key login refused: the key must be authorized here, the request signed "
        + "for this method and path, and the client's clock within 5 minutes of the server's"

    /// A proxy whose users file holds alice (an admin) and dave, with alice's and dave's keys authorized.
    private static func withKeyProxy(_ tweak: (inout ServerConfig) -> Void = { _ in },
                                     body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw\ndave:{PLAIN}dave-pw\n")
        let keys = AuthorizedKeys.parse("# keys\n\(alice.line("alice"))\n\(dave.line("dave"))\n", path: "authorized_keys")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.admins = ["alice"]
            config.authorizedKeys = keys
            config.authorizedKeysPath = nil
            tweak(&config)
        }, body: body)
    }

    @Test func signedRequestsAreServedAsTheKeysUserAndTsIsForwarded() throws {
        try Self.withKeyProxy { proxy, fake in
            let ts = Self.now()
            let client = try proxy.tls()
            defer { client.close() }
            let tags = try client.exchange(Req.get("/api/tags?ts=\(ts)", Self.alice.header("GET", "/api/tags", ts: ts)))
            #expect(tags.status == 200, "\(tags.text)")
            let generate = try client.exchange(Req.generate().replacingFirst("/api/generate", with: "/api/generate?ts=\(ts)")
                .replacingFirst("Host: localhost\r\n", with: "Host: localhost\r\n" + Self.alice.header("POST", "/api/generate", ts: ts)))
            #expect(generate.status == 200, "\(generate.text)")
            #expect(generate.text.contains("\"done\":true"))
            let arrived = fake.requests
            #expect(arrived.map(\.target) == ["/api/tags?ts=\(ts)", "/api/generate?ts=\(ts)"])
            #expect(arrived.allSatisfy { $0.header("Authorization") == nil }, "the signature reached the upstream")

            // dave's key logs in as dave, who is no admin: the route policy refuses a pull, whatever the query.
            let pull = try proxy.fetch(Req.post("/api/pull?ts=\(ts)", #"{"model":"mistral:7b"}"#,
                                                Self.dave.header("POST", "/api/pull", ts: ts)))
            expectError(pull, status: 403, family: .ollama)
            let daveTags = try proxy.fetch(Req.get("/api/tags?ts=\(ts)", Self.dave.header("GET", "/api/tags", ts: ts)))
            #expect(daveTags.status == 200, "\(daveTags.text)")
        }
    }

    @Test func theSameSignatureIsAcceptedOnItsConnectionAndRefusedOnAnother() throws {
        try Self.withKeyProxy { proxy, _ in
            let ts = Self.now()
            let request = Req.get("/api/ps?ts=\(ts)", Self.alice.header("GET", "/api/ps", ts: ts))
            let client = try proxy.tls()
            #expect(try client.exchange(request).status == 200)
            #expect(try client.exchange(request).status == 200)
            client.close()
            let replay = try proxy.fetch(request)
            expectError(replay, status: 401, family: .ollama)
            #expect(jsonObject(replay)?["error"] as? String == Self.refusal)
            #expect(replay.head.header("WWW-Authenticate")?.hasPrefix("Basic realm=") == true)
        }
    }

    @Test func staleUnknownAndBadSignaturesGet401InTheCallersShape() throws {
        try Self.withKeyProxy { proxy, fake in
            let ts = Self.now()
            let stale = try proxy.fetch(Req.get("/api/tags?ts=\(ts - 400)", Self.alice.header("GET", "/api/tags", ts: ts - 400)))
            expectError(stale, status: 401, family: .ollama)
            #expect(jsonObject(stale)?["error"] as? String == Self.refusal)
            let missing = try proxy.fetch(Req.get("/api/tags", Self.alice.header("GET", "/api/tags", ts: ts)))
            expectError(missing, status: 401, family: .ollama)
            let unknown = try proxy.fetch(Req.get("/api/tags?ts=\(ts)", Self.stranger.header("GET", "/api/tags", ts: ts)))
            expectError(unknown, status: 401, family: .ollama)
            #expect(jsonObject(unknown)?["error"] as? String == Self.refusal, "one message for every reason")
            #expect(jsonObject(missing)?["error"] as? String == Self.refusal)
            // Signed for another path: on an OpenAI route, the OpenAI shape.
            let models = try proxy.fetch(Req.get("/v1/models?ts=\(ts)", Self.alice.header("GET", "/api/tags", ts: ts)))
            expectError(models, status: 401, family: .openAI, openAICode: "invalid_api_key")
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func theKeyOfAUserDisabledInTheUsersFileIsRefused() throws {
        let carol = OllamaCLIKey(seed: 4)
        try Self.withKeyProxy({ config in
            // carol's line is unusable (an unknown hash format): she is disabled, her key with her.
            config.users = try? TestUsers.parse("alice:{PLAIN}pw\ncarol:$unknown$x\n")
            config.authorizedKeys = AuthorizedKeys.parse(carol.line("carol"), path: "authorized_keys")
        }) { proxy, fake in
            let ts = Self.now()
            let response = try proxy.fetch(Req.get("/api/tags?ts=\(ts)", carol.header("GET", "/api/tags", ts: ts)))
            expectError(response, status: 401, family: .ollama)
            #expect(jsonObject(response)?["error"] as? String == Self.refusal)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func checkConfigReportsTheKeysAndTheSkippedLines() throws {
        let dir = try OpsTempDirectory()
        let users = dir.file("users.htpasswd")
        try "alice:{PLAIN}x\n".write(toFile: users, atomically: true, encoding: .utf8)
        let keys = dir.file("authorized_keys")
        try "\(Self.alice.line("alice"))\nssh-rsa AAAAB3NzaC1yc2E bob\n".write(toFile: keys, atomically: true, encoding: .utf8)
        let run = CLI.run(["check-config", "--listen-plain", "127.0.0.1:1", "--users", users, "--metrics-listen", "off",
                           "--authorized-keys", keys])
        #expect(run.status == 0, "\(run)")
        #expect(run.stderr.contains("\(keys):2: \"ssh-rsa\" key: only ssh-ed25519 keys are accepted"), "\(run)")
        #expect(run.stderr.contains("authorized keys \(keys): 1 key(s), 1 line(s) skipped"), "\(run)")
        let missing = CLI.run(["check-config", "--listen-plain", "127.0.0.1:1", "--users", users, "--metrics-listen", "off",
                               "--authorized-keys", dir.file("nowhere")])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("\(dir.file("nowhere")): cannot open"), "\(missing)")
    }

    @Test func withoutAuthorizedKeysTheSignedFormIsRefused() throws {
        try Self.withKeyProxy({ $0.authorizedKeys = nil }) { proxy, fake in
            let ts = Self.now()
            let response = try proxy.fetch(Req.get("/api/tags?ts=\(ts)", Self.alice.header("GET", "/api/tags", ts: ts)))
            expectError(response, status: 401, family: .ollama)
            #expect((jsonObject(response)?["error"] as? String)?.contains("no authorized-keys") == true)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func refusedSignaturesCountAsFailedLogins() throws {
        try Self.withKeyProxy({ $0.authSettings.failureLimit = 3 }) { proxy, fake in
            let ts = Self.now()
            for _ in 0..<3 {
                let bad = try proxy.fetch(Req.get("/api/version?ts=\(ts)", Self.alice.header("GET", "/api/tags", ts: ts)))
                #expect(bad.status == 401)
            }
            // alice is throttled from this address now, even with a right signature.
            let good = try proxy.fetch(Req.get("/api/tags?ts=\(ts)", Self.alice.header("GET", "/api/tags", ts: ts)))
            expectError(good, status: 429, family: .ollama)
            #expect(retryAfterSeconds(good) != nil)
            #expect(fake.requests.isEmpty)
        }
    }

    /// A signature is good for the request it signs: the same header again on the connection, for another method
    /// and path (or without `ts`), is checked again and refused, not let through as a remembered login.
    @Test func aSignatureLetsThroughOnlyItsOwnRequest() throws {
        try Self.withKeyProxy { proxy, fake in
            let ts = Self.now()
            let header = Self.alice.header("GET", "/api/tags", ts: ts)
            let client = try proxy.tls()
            defer { client.close() }
            #expect(try client.exchange(Req.get("/api/tags?ts=\(ts)", header)).status == 200)
            let ps = try client.exchange(Req.get("/api/ps", header))
            expectError(ps, status: 401, family: .ollama)
            // Each request signed for itself is fine on the same connection.
            let own = try client.exchange(Req.get("/api/ps?ts=\(ts)", Self.alice.header("GET", "/api/ps", ts: ts)))
            #expect(own.status == 200, "\(own.text)")
            // A refusal with a body unread ends the connection: last.
            let pull = try client.exchange(Req.post("/api/pull?ts=\(ts)", #"{"model":"evil/model"}"#, header))
            expectError(pull, status: 401, family: .ollama)
            #expect(fake.requests.map(\.target) == ["/api/tags?ts=\(ts)", "/api/ps?ts=\(ts)"])
        }
    }

    /// Behind a trusted proxy one connection carries many clients: a signature seen once is a replay on that same
    /// connection too, whichever client the X-Forwarded-For names.
    @Test func throughATrustedProxyARepeatedSignatureIsAReplay() throws {
        try Self.withKeyProxy({ $0.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!] }) { proxy, fake in
            let ts = Self.now()
            let header = Self.alice.header("GET", "/api/tags", ts: ts)
            let balancer = try proxy.tls()
            defer { balancer.close() }
            let victim = try balancer.exchange(Req.get("/api/tags?ts=\(ts)", "X-Forwarded-For: 198.51.100.9\r\n" + header))
            #expect(victim.status == 200, "\(victim.text)")
            let attacker = try balancer.exchange(Req.get("/api/tags?ts=\(ts)", "X-Forwarded-For: 203.0.113.7\r\n" + header))
            expectError(attacker, status: 401, family: .ollama)
            let again = try balancer.exchange(Req.get("/api/tags?ts=\(ts)", "X-Forwarded-For: 198.51.100.9\r\n" + header))
            expectError(again, status: 401, family: .ollama)
            #expect(fake.requests.count == 1)
        }
    }

    /// A key logs in only as a user of the users file: removing the user (`tollgate users remove`) revokes the
    /// key's login and the admin rights that came with it.
    @Test func aKeyWhoseUserIsNotInTheUsersFileIsRefused() throws {
        try Self.withKeyProxy({ $0.users = try? TestUsers.parse("bob:{PLAIN}pw\n") }) { proxy, fake in
            let ts = Self.now()
            let pull = try proxy.fetch(Req.post("/api/pull?ts=\(ts)", #"{"model":"evil/model"}"#,
                                                Self.alice.header("POST", "/api/pull", ts: ts)))
            expectError(pull, status: 401, family: .ollama)
            #expect(jsonObject(pull)?["error"] as? String == Self.refusal)
            #expect(fake.requests.isEmpty)
        }
    }

    /// Deleting the `authorized-keys` file of a running server revokes every key (keeping the old ones would keep
    /// the key the admin meant to remove); writing it back brings them back.
    @Test func deletingTheKeysFileRevokesEveryKey() throws {
        let dir = try OpsTempDirectory()
        let path = dir.file("authorized_keys")
        try "\(Self.alice.line("alice"))\n".write(toFile: path, atomically: true, encoding: .utf8)
        try Self.withKeyProxy({ config in
            config.authorizedKeys = try? AuthorizedKeys.load(path: path)
            config.authorizedKeysPath = path
            config.authSettings.failureLimit = 0
        }) { proxy, _ in
            // Each poll signs another second back from the start (a signature used once would be a replay), and
            // stops short of the 5-minute window (a stale ts would be refused too): nil then.
            let start = Self.now()
            var back: Int64 = 0
            func status() throws -> Int? {
                back += 1
                guard back < 280 else { return nil }
                let ts = start - back
                return try proxy.fetch(Req.get("/api/tags?ts=\(ts)", Self.alice.header("GET", "/api/tags", ts: ts))).status
            }
            #expect(try status() == 200)
            #expect(unlink(path) == 0)
            #expect(try waitUntil(pollMillis: 100) { try status() ?? 0 == 401 }, "the deleted file's keys stayed in force")
            try "\(Self.alice.line("alice"))\n".write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try waitUntil(pollMillis: 100) { try status() ?? 0 == 200 }, "the keys did not come back with the file")
        }
    }

    /// `tollgate users remove` names the key lines that still name the removed user.
    @Test func usersRemoveNamesTheKeysLeftForTheUser() throws {
        let dir = try OpsTempDirectory()
        let users = dir.file("users.htpasswd")
        try "alice:{PLAIN}x\nbob:{PLAIN}y\n".write(toFile: users, atomically: true, encoding: .utf8)
        let keys = dir.file("authorized_keys")
        try "# keys\n\(Self.dave.line("bob"))\n\(Self.alice.line("alice"))\n".write(toFile: keys, atomically: true, encoding: .utf8)
        let removeAlice = CLI.run(["users", "remove", "alice", "--file", users, "--authorized-keys", keys])
        #expect(removeAlice.status == 0, "\(removeAlice)")
        #expect(removeAlice.stderr.contains("\(keys):3: the ollama key SHA256:"), "\(removeAlice)")
        #expect(removeAlice.stderr.contains("still names alice"), "\(removeAlice)")
        #expect(!removeAlice.stderr.contains("bob"), "\(removeAlice)")
        let removeBob = CLI.run(["users", "remove", "bob", "--file", users])
        #expect(removeBob.status == 0 && !removeBob.stderr.contains("still names"), "\(removeBob)")
    }
}
