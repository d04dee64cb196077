import Foundation
import Testing
import TollgateIO
@testable import Tollgate

@Suite struct AuthUsersFileTests {
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
        let users = UsersFile.parse(text, path: "users.htpasswd")
        #expect(users.entries.count == 8)
        #expect(users.entries["alice"]?.format == .bcrypt(cost: 5))
        #expect(users.entries["alice"]?.hash == Fixture.bcrypt5)
        #expect(users.entries["alice"]?.line == 2)
        #expect(users.entries["dave"]?.hash == Fixture.ssha)
        #expect(users.entries["heidi"]?.format == .yescrypt)
        #expect(users.entries["heidi"]?.line == 11)
    }

    @Test func weakFormatsWarnNamingFileLineAndUser() throws {
        let users = UsersFile.parse("alice:\(Fixture.bcrypt5)\nold:\(Fixture.sha1)\nx:{PLAIN}p\ny:\(Fixture.ssha)\nz:\(Fixture.apr1)\n"
                                        + "m:\(Fixture.md5crypt)\nd:\(Fixture.descrypt)\n",
                                    path: "users.htpasswd")
        #expect(users.warnings.map(\.description) == [
            "users.htpasswd:2: user \"old\" uses {SHA} (unsalted SHA-1); rehash with htpasswd -B",
            "users.htpasswd:3: user \"x\" uses {PLAIN} (the password in clear); rehash with htpasswd -B",
            "users.htpasswd:4: user \"y\" uses {SSHA} (salted SHA-1); rehash with htpasswd -B",
            "users.htpasswd:5: user \"z\" uses $apr1$ (MD5-crypt); rehash with htpasswd -B",
            "users.htpasswd:6: user \"m\" uses $1$ (MD5-crypt); rehash with htpasswd -B",
            "users.htpasswd:7: user \"d\" uses DES crypt (only the first 8 characters of a password count); "
                + "rehash with htpasswd -B",
        ])
        #expect(users.entries.count == 7)
        #expect(users.disabled.isEmpty)
        #expect(UsersFile.parse("a:\(Fixture.bcrypt5)\n", path: "u").warnings.isEmpty)
    }

    /// What nginx's htpasswd files hold besides Apache's formats: `openssl passwd -1` and `htpasswd -d` lines load
    /// and verify, each with its weak-format warning.
    @Test func md5CryptAndDESCryptLinesLoadAndVerify() throws {
        let users = UsersFile.parse("m:\(Fixture.md5crypt)\nd:\(Fixture.descrypt)\n", path: "users.htpasswd")
        let m = try #require(users.entries["m"])
        let d = try #require(users.entries["d"])
        #expect(m.format == .md5crypt && d.format == .descrypt)
        #expect(PasswordVerifier.verify(password: Array("md5 pw".utf8), against: m.hash, format: m.format))
        #expect(PasswordVerifier.verify(password: Array("des-pw".utf8), against: d.hash, format: d.format))
        #expect(!PasswordVerifier.verify(password: Array("des-px".utf8), against: d.hash, format: d.format))
        // Their stand-ins keep format and salt and never match.
        for entry in [m, d] {
            let standIn = users.standIn(for: "nobody-\(entry.name)")
            #expect(HashFormat(hash: standIn.hash) == standIn.format)
        }
    }

    /// A line Tollgate cannot use disables its user only (or is skipped when it names none), with a warning naming
    /// file and line; every other user of the file still loads.
    @Test func everyUnusableLineDisablesOnlyItsUserNamingFileAndLine() {
        let cases: [(String, String?, String)] = [
            ("bob", nil, "users.htpasswd:2: malformed line (expected user:hash); line ignored"),
            (":\(Fixture.sha1)", nil, "users.htpasswd:2: malformed line: empty user name; line ignored"),
            ("bob:", "bob", "users.htpasswd:2: user \"bob\" cannot log in: empty hash"),
            ("bo b:\(Fixture.sha1)", nil,
             "users.htpasswd:2: user name \"bo b\" contains a space or control character; line ignored"),
            (" bob:\(Fixture.sha1)", nil,
             "users.htpasswd:2: user name \" bob\" contains a space or control character; line ignored"),
            ("b\u{1}ob:\(Fixture.sha1)", nil,
             "users.htpasswd:2: user name \"b\\u{01}ob\" contains a space or control character; line ignored"),
            ("bob:not-a-hash", "bob", "users.htpasswd:2: user \"bob\" cannot log in: unknown hash format (expected "
                + HashFormat.expected + ")"),
            ("bob:$1$abc$def", "bob", "users.htpasswd:2: user \"bob\" cannot log in: unknown hash format (expected "
                + HashFormat.expected + ")"),
            ("bob:{PLAIN}a\u{7}b", "bob", "users.htpasswd:2: user \"bob\" cannot log in: the hash contains a control character"),
        ]
        for (line, user, message) in cases {
            let users = UsersFile.parse("alice:\(Fixture.bcrypt5)\n\(line)\ncarol:\(Fixture.sha1)\n", path: "users.htpasswd")
            #expect(users.entries.keys.sorted() == ["alice", "carol"], "\(line)")
            #expect(users.warnings.map(\.description) == [message, "users.htpasswd:3: user \"carol\" uses {SHA} "
                + "(unsalted SHA-1); rehash with htpasswd -B"], "\(line)")
            #expect(users.disabled.count == 1 && users.disabled.first?.line == 2, "\(line)")
            #expect(users.disabled.first?.user == user, "\(line)")
            #expect(users.summary == "2 user(s), 1 line(s) disabled (tollgate users list shows which)")
        }
    }

    /// A user on two lines is ambiguous: neither line counts (the other users do), and the warning names both lines.
    @Test func aDuplicateUserIsDisabledOnBothLines() {
        let text = "bob:\(Fixture.bcrypt5)\n#\nalice:\(Fixture.bcrypt5)\n\n\n\nbob:{PLAIN}b\n"
        let users = UsersFile.parse(text, path: "users.htpasswd")
        #expect(users.entries.keys.sorted() == ["alice"])
        #expect(users.disabled == [DisabledLine(line: 1, user: "bob", reason: "user on more than one line"),
                                   DisabledLine(line: 7, user: "bob", reason: "duplicate of line 1")])
        #expect(users.warnings.map(\.description) == ["users.htpasswd:7: user \"bob\" is also on line 1: neither "
            + "line counts and \"bob\" cannot log in until one is removed"])
    }

    /// Reloading the same file warns nothing new; a changed or added line warns once, a line that only moved does not.
    @Test func warningsAreReportedOncePerFileAndLineContent() {
        let once = WarnOnce()
        let first = UsersFile.parse("old:\(Fixture.sha1)\nbad:nope\n", path: "users.htpasswd")
        #expect(once.fresh(first.warnings).count == 2)
        #expect(once.fresh(UsersFile.parse("old:\(Fixture.sha1)\nbad:nope\n", path: "users.htpasswd").warnings).isEmpty)
        let moved = UsersFile.parse("# new comment\nold:\(Fixture.sha1)\nbad:nope\nz:\(Fixture.apr1)\n", path: "users.htpasswd")
        #expect(once.fresh(moved.warnings).map(\.description)
            == ["users.htpasswd:4: user \"z\" uses $apr1$ (MD5-crypt); rehash with htpasswd -B"])
        // The same line in another file is another warning.
        #expect(once.fresh(UsersFile.parse("old:\(Fixture.sha1)\n", path: "other.htpasswd").warnings).count == 1)
        // The key holds no hash or password.
        for warning in moved.warnings { #expect(warning.key.count == 32) }
    }

    @Test func loadReportsUnreadableFilesAndDisablesInvalidUTF8Lines() throws {
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
        let users = try UsersFile.load(path: path)
        #expect(users.entries["alice"]?.format == .bcrypt(cost: 5))
        #expect(users.entries["bob"] == nil)
        #expect(users.disabled == [DisabledLine(line: 2, user: "bob", reason: "the hash is not valid UTF-8")])
    }

    @Test func dummyHashHasTheTypicalFormatAndCostAndNeverMatches() throws {
        let b6 = try #require(PasswordCrypt.bcrypt(password: Array("a".utf8), cost: 6))
        let b4a = try #require(PasswordCrypt.bcrypt(password: Array("b".utf8), cost: 4))
        let b4b = try #require(PasswordCrypt.bcrypt(password: Array("c".utf8), cost: 4))
        let users = UsersFile.parse("u1:\(b6)\nu2:\(b4a)\nu3:\(Fixture.apr1)\nu4:\(b4b)\n", path: "u")
        #expect(users.dummyFormat == .bcrypt(cost: 4))
        #expect(HashFormat(hash: users.dummyHash) == .bcrypt(cost: 4))
        for password in ["a", "b", "c", ""] {
            #expect(!PasswordVerifier.verify(password: Array(password.utf8), against: users.dummyHash,
                                             format: users.dummyFormat))
        }
        let sha = UsersFile.parse("a:\(Fixture.sha512crypt)\nb:\(Fixture.sha1)\nc:$6$rounds=5000$abcdefgh$KQeXafAQAaOoKTevphVU215RvJdgzyfASRasIOuh12hO8u0r1bGW92ZnTmC9IjsiQ8VPiTXBiZF49dFL1U4wX/\n", path: "u")
        #expect(sha.dummyFormat == .sha512crypt)
        #expect(HashFormat(hash: sha.dummyHash) == .sha512crypt)
        #expect(!PasswordVerifier.verify(password: Array("pw".utf8), against: sha.dummyHash, format: .sha512crypt))
        let empty = UsersFile.parse("# nobody yet\n", path: "u")
        #expect(empty.entries.isEmpty)
        #expect(HashFormat(hash: empty.dummyHash) == .bcrypt(cost: 5))
        #expect(PasswordCrypt.crypt(password: [65], setting: empty.dummyHash) != nil)
    }

    @Test func unknownNamesGetAStandInPerCostInTheFilesProportions() throws {
        let b6 = try #require(PasswordCrypt.bcrypt(password: Array("a".utf8), cost: 6))
        let b4 = try #require(PasswordCrypt.bcrypt(password: Array("b".utf8), cost: 4))
        let text = "u1:\(b6)\nu2:\(b4)\nu3:\(b4)\nu4:\(b4)\nu5:\(Fixture.sha512crypt)\n"
        let users = UsersFile.parse(text, path: "u")
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
        let again = UsersFile.parse(text, path: "u")
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
