import Foundation
import Testing
import TollgateIO
@testable import Tollgate

@Suite struct AuthUsersFileTests {
    private func error(_ text: String) -> UsersFileError? {
        do {
            _ = try UsersFile.parse(text, path: "users.htpasswd")
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesEveryFormatWithCommentsBlankLinesAndCRLF() throws {
        let text = """
            # admins
            alice:\(Fixture.bcrypt5)\r
            bob:\(Fixture.apr1)

              # indented comment
            carol:\(Fixture.sha1)
            dave:\(Fixture.ssha)  \t
            erin:{PLAIN}pw
            frank:\(Fixture.sha256crypt)
            grace:\(Fixture.sha512crypt)
            heidi:\(Fixture.yescrypt)
            """
        let users = try UsersFile.parse(text, path: "users.htpasswd")
        #expect(users.entries.count == 8)
        #expect(users.entries["alice"]?.format == .bcrypt(cost: 5))
        #expect(users.entries["alice"]?.hash == Fixture.bcrypt5)
        #expect(users.entries["alice"]?.line == 2)
        #expect(users.entries["dave"]?.hash == Fixture.ssha)
        #expect(users.entries["heidi"]?.format == .yescrypt)
        #expect(users.entries["heidi"]?.line == 11)
    }

    @Test func weakFormatsWarnNamingFileLineAndUser() throws {
        let users = try UsersFile.parse("alice:\(Fixture.bcrypt5)\nold:\(Fixture.sha1)\nx:{PLAIN}p\ny:\(Fixture.ssha)\nz:\(Fixture.apr1)\n",
                                        path: "users.htpasswd")
        #expect(users.warnings == [
            "users.htpasswd:2: user \"old\" uses {SHA} (unsalted SHA-1); rehash with htpasswd -B",
            "users.htpasswd:3: user \"x\" uses {PLAIN} (the password in clear); rehash with htpasswd -B",
            "users.htpasswd:4: user \"y\" uses {SSHA} (salted SHA-1); rehash with htpasswd -B",
            "users.htpasswd:5: user \"z\" uses $apr1$ (MD5-crypt); rehash with htpasswd -B",
        ])
        #expect(try UsersFile.parse("a:\(Fixture.bcrypt5)\n", path: "u").warnings.isEmpty)
    }

    @Test func everyErrorNamesFileAndLine() {
        let cases: [(String, String)] = [
            ("# c\nbob\n", "users.htpasswd:2: malformed line: expected user:hash"),
            ("\n\n:\(Fixture.sha1)\n", "users.htpasswd:3: malformed line: empty user name"),
            ("bob:\n", "users.htpasswd:1: empty hash for user \"bob\""),
            ("bo b:\(Fixture.sha1)\n", "users.htpasswd:1: user name \"bo b\" contains a space or control character"),
            (" bob:\(Fixture.sha1)\n", "users.htpasswd:1: user name \" bob\" contains a space or control character"),
            ("b\u{1}ob:\(Fixture.sha1)\n", "users.htpasswd:1: user name \"b\\u{01}ob\" contains a space or control character"),
            ("bob:abJnggxhB/yWI\n", "users.htpasswd:1: unknown hash format for user \"bob\" (expected $2y$, $2b$, $2a$, $5$, $6$, $y$, $apr1$, {SHA}, {SSHA} or {PLAIN})"),
            ("x:{PLAIN}a\u{7}b\n", "users.htpasswd:1: hash for user \"x\" contains a control character"),
        ]
        for (text, message) in cases {
            #expect(error(text)?.description == message)
        }
        let duplicate = "bob:\(Fixture.sha1)\n#\nalice:\(Fixture.apr1)\n\n\n\nbob:\(Fixture.apr1)\n"
        #expect(error(duplicate)?.description == "users.htpasswd:7: duplicate user \"bob\" (first on line 1)")
        #expect(error(duplicate)?.line == 7)
    }

    @Test func loadReportsUnreadableFilesAndInvalidUTF8() throws {
        let missing = "/nonexistent-tollgate/users.htpasswd"
        #expect(throws: UsersFileError(path: missing, "cannot open: No such file or directory")) {
            try UsersFile.load(path: missing)
        }
        let dir = try makeTemporaryDirectory()
        #expect(throws: UsersFileError(path: dir, "not a regular file")) { try UsersFile.load(path: dir) }
        let path = dir + "/users.htpasswd"
        var bytes = Array("alice:\(Fixture.bcrypt5)\nbob:{PLAIN}".utf8)
        bytes += [0xFF, 0xFE, 0x0A]
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: UsersFileError(path: path, line: 2, "not valid UTF-8")) { try UsersFile.load(path: path) }
        try Data("alice:\(Fixture.bcrypt5)\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try UsersFile.load(path: path).entries["alice"]?.format == .bcrypt(cost: 5))
    }

    @Test func dummyHashHasTheTypicalFormatAndCostAndNeverMatches() throws {
        let b6 = try #require(PasswordCrypt.bcrypt(password: Array("a".utf8), cost: 6))
        let b4a = try #require(PasswordCrypt.bcrypt(password: Array("b".utf8), cost: 4))
        let b4b = try #require(PasswordCrypt.bcrypt(password: Array("c".utf8), cost: 4))
        let users = try UsersFile.parse("u1:\(b6)\nu2:\(b4a)\nu3:\(Fixture.apr1)\nu4:\(b4b)\n", path: "u")
        #expect(users.dummyFormat == .bcrypt(cost: 4))
        #expect(HashFormat(hash: users.dummyHash) == .bcrypt(cost: 4))
        for password in ["a", "b", "c", ""] {
            #expect(!PasswordVerifier.verify(password: Array(password.utf8), against: users.dummyHash,
                                             format: users.dummyFormat))
        }
        let sha = try UsersFile.parse("a:\(Fixture.sha512crypt)\nb:\(Fixture.sha1)\nc:$6$rounds=5000$abcdefgh$KQeXafAQAaOoKTevphVU215RvJdgzyfASRasIOuh12hO8u0r1bGW92ZnTmC9IjsiQ8VPiTXBiZF49dFL1U4wX/\n", path: "u")
        #expect(sha.dummyFormat == .sha512crypt)
        #expect(HashFormat(hash: sha.dummyHash) == .sha512crypt)
        #expect(!PasswordVerifier.verify(password: Array("pw".utf8), against: sha.dummyHash, format: .sha512crypt))
        let empty = try UsersFile.parse("# nobody yet\n", path: "u")
        #expect(empty.entries.isEmpty)
        #expect(HashFormat(hash: empty.dummyHash) == .bcrypt(cost: 5))
        #expect(PasswordCrypt.crypt(password: [65], setting: empty.dummyHash) != nil)
    }

    @Test func unknownNamesGetAStandInPerCostInTheFilesProportions() throws {
        let b6 = try #require(PasswordCrypt.bcrypt(password: Array("a".utf8), cost: 6))
        let b4 = try #require(PasswordCrypt.bcrypt(password: Array("b".utf8), cost: 4))
        let text = "u1:\(b6)\nu2:\(b4)\nu3:\(b4)\nu4:\(b4)\nu5:\(Fixture.sha512crypt)\n"
        let users = try UsersFile.parse(text, path: "u")
        var seen: [HashFormat: Int] = [:]
        for i in 0..<2_000 {
            let standIn = users.standIn(for: "nobody\(i)")
            #expect(HashFormat(hash: standIn.hash) == standIn.format)
            seen[standIn.format, default: 0] += 1
        }
        // Every cost in the file is used, roughly as often as users have it (3/5, 1/5, 1/5).
        #expect(Set(seen.keys) == [.bcrypt(cost: 4), .bcrypt(cost: 6), .sha512crypt])
        #expect((1_000...1_400).contains(seen[.bcrypt(cost: 4)] ?? 0))
        #expect((250...550).contains(seen[.bcrypt(cost: 6)] ?? 0))
        // One name always gets the same stand-in, also from a fresh parse of the same file.
        let again = try UsersFile.parse(text, path: "u")
        for name in ["mallory", "root", "admin"] {
            #expect(users.standIn(for: name).hash == users.standIn(for: name).hash)
            #expect(users.standIn(for: name).format == again.standIn(for: name).format)
        }
        // A stand-in keeps its cost's parameters and never matches.
        let b6standIn = try #require((0..<200).lazy.map { users.standIn(for: "n\($0)") }.first { $0.format == .bcrypt(cost: 6) })
        #expect(b6standIn.hash.hasPrefix(String(b6.prefix(29))))
        #expect(!PasswordVerifier.verify(password: Array("a".utf8), against: b6standIn.hash, format: .bcrypt(cost: 6)))
    }
}
