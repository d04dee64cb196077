import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// One user, two spellings: Swift finds a name under any canonically equivalent spelling, while what is keyed by
/// user outside the process (the ledger in SQLite, Redis) compares bytes. Whatever spelling a client sends, and
/// whichever way it logs in (password, API key, `ollama` key), the user must be recorded under one spelling: the
/// users file's.
@Suite struct AuthLoginAttackSpellingTests {
    /// The users file's spelling of a name, and a canonically equivalent one a client may send instead.
    struct Spelling: Sendable, CustomTestStringConvertible {
        let file: String
        let sent: String
        let what: String
        var testDescription: String { what }
    }

    static let spellings: [Spelling] = [
        Spelling(file: "jos\u{E9}", sent: "jose\u{301}", what: "composed in the file, decomposed sent"),
        Spelling(file: "jose\u{301}", sent: "jos\u{E9}", what: "decomposed in the file, composed sent"),
        Spelling(file: "Kim", sent: "\u{212A}im", what: "KELVIN SIGN for K"),
        Spelling(file: "\u{C5}sa", sent: "\u{212B}sa", what: "ANGSTROM SIGN for A with ring"),
        Spelling(file: "\u{212B}sa", sent: "A\u{30A}sa", what: "ANGSTROM SIGN in the file, A + ring sent"),
        Spelling(file: "\u{D55C}", sent: "\u{1112}\u{1161}\u{11AB}", what: "Hangul syllable in the file, jamo sent"),
        Spelling(file: "a\u{323}\u{301}x", sent: "a\u{301}\u{323}x", what: "combining marks in the other order"),
    ]

    @Test(arguments: spellings)
    func everyPasswordFormIsRecordedUnderTheUsersFilesSpelling(_ spelling: Spelling) throws {
        #expect(spelling.file == spelling.sent && AuthLoginAttack.utf8(spelling.file) != AuthLoginAttack.utf8(spelling.sent))
        let path = try AuthLoginAttack.databasePath()
        try withProxyAndFake(configure: { config in
            config.users = try! TestUsers.parse("\(spelling.file):{PLAIN}pw\n")
            config.databasePath = path
        }) { proxy, _ in
            for name in [spelling.sent, spelling.file] {
                // Basic on a fresh connection (a password check), then again on it (the remembered login).
                let client = try proxy.tls()
                defer { client.close() }
                for _ in 0..<2 {
                    #expect(try client.exchange(Req.get("/api/tags", Credential.basic(name, "pw"))).status == 200)
                }
                for credential in [Credential.bearer(name, "pw"), Credential.apiKey(name, "pw")] {
                    let response = try proxy.fetch(Req.get("/api/tags", credential))
                    #expect(response.status == 200, "\(response.text)")
                }
            }
            try #require(proxy.server.ledger).sync()
        }
        let users = try AuthLoginAttack.ledgerUsers(path)
        #expect(users.count == 8)
        #expect(users.allSatisfy { $0 == AuthLoginAttack.utf8(spelling.file) }, "ledger users: \(users)")
    }

    /// `tollgate keys create` finds the user by Swift's `==` and stores the name as typed: a key record may spell its
    /// user otherwise than the users file does. A key login then runs as the key record's spelling, a password login
    /// as the file's, and the ledger (like the fleet's quotas and leases in Redis) sees two users.
    @Test func anAPIKeyLoginIsRecordedUnderTheUsersFilesSpelling() throws {
        let composed = "jos\u{E9}", decomposed = "jose\u{301}"
        let store = InMemoryKeyStore()
        let token = APIKeyToken.generate()
        try store.insert(APIKey(id: token.id, user: decomposed, hash: token.hash, created: 1))
        let path = try AuthLoginAttack.databasePath()
        try withProxyAndFake(keyStore: store, configure: { config in
            config.users = try! TestUsers.parse("\(composed):{PLAIN}pw\n")
            config.databasePath = path
        }) { proxy, _ in
            #expect(try proxy.fetch(Req.get("/api/tags", Credential.basic(composed, "pw"))).status == 200)
            let client = try proxy.tls()
            defer { client.close() }
            for _ in 0..<2 {
                let response = try client.exchange(Req.get("/api/tags", AuthLoginAttack.keyHeader(token)))
                #expect(response.status == 200, "\(response.text)")
            }
            let claimed = try proxy.fetch(Req.get("/api/tags", AuthLoginAttack.keyHeader(token, claiming: composed)))
            #expect(claimed.status == 200, "\(claimed.text)")
            try #require(proxy.server.ledger).sync()
        }
        let users = try AuthLoginAttack.ledgerUsers(path)
        #expect(users.count == 4)
        #expect(users.allSatisfy { $0 == AuthLoginAttack.utf8(composed) }, "ledger users: \(users)")
    }

    /// The same for an `ollama` key whose `authorized-keys` line spells its user otherwise than the users file.
    @Test func anOllamaKeyLoginIsRecordedUnderTheUsersFilesSpelling() throws {
        let composed = "jos\u{E9}", decomposed = "jose\u{301}"
        let key = OllamaCLIKey(seed: 7)
        let path = try AuthLoginAttack.databasePath()
        try withProxyAndFake(configure: { config in
            config.users = try! TestUsers.parse("\(composed):{PLAIN}pw\n")
            config.authorizedKeys = AuthorizedKeys.parse("\(key.line(decomposed))\n", path: "authorized_keys")
            config.authorizedKeysPath = nil
            config.databasePath = path
        }) { proxy, _ in
            #expect(try proxy.fetch(Req.get("/api/tags", Credential.basic(composed, "pw"))).status == 200)
            let ts = Int64(Date().timeIntervalSince1970)
            let signed = try proxy.fetch(Req.get("/api/tags?ts=\(ts)", key.header("GET", "/api/tags", ts: ts)))
            #expect(signed.status == 200, "\(signed.text)")
            try #require(proxy.server.ledger).sync()
        }
        let users = try AuthLoginAttack.ledgerUsers(path)
        #expect(users.count == 2)
        #expect(users.allSatisfy { $0 == AuthLoginAttack.utf8(composed) }, "ledger users: \(users)")
    }
}
