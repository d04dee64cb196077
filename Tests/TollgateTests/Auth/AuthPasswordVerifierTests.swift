import Testing
import TollgateIO
@testable import Tollgate

@Suite struct AuthPasswordVerifierTests {
    private func verify(_ password: String, _ hash: String) -> Bool {
        guard let format = HashFormat(hash: hash) else {
            Issue.record("format of \(hash) not recognised")
            return false
        }
        return PasswordVerifier.verify(password: Array(password.utf8), against: hash, format: format)
    }

    static let vectors: [(hash: String, password: String, format: HashFormat)] = [
        (Fixture.bcrypt5, "secret", .bcrypt(cost: 5)),
        ("$2b$" + Fixture.bcrypt5.dropFirst(4), "secret", .bcrypt(cost: 5)),
        ("$2a$" + Fixture.bcrypt5.dropFirst(4), "secret", .bcrypt(cost: 5)),
        (Fixture.apr1, "pw", .apr1),
        ("$apr1$ab.cd/ef$KtKUmBAgZNXqeLOoy7LdX.", "p:ss w0rd", .apr1),
        ("$apr1$x$tMwYqBfQwi3FYAr0aJc8M/", "", .apr1),
        ("$apr1$jQ3yvTwn$xto4pyUBpT/UZ28onZeHf1", "a much longer password than sixteen bytes", .apr1),
        (Fixture.sha1, "pw", .sha1),
        (Fixture.ssha, "pw", .ssha),
        ("{SSHA}+h1+QBCiIuTchN7kZSK2ce/0FMFOYUNsNDI0Mg==", "correct horse", .ssha),
        ("{PLAIN}pw", "pw", .plain),
        ("{PLAIN}with: colon and space", "with: colon and space", .plain),
        (Fixture.sha256crypt, "pw", .sha256crypt),
        (Fixture.sha512crypt, "pw", .sha512crypt),
        (Fixture.yescrypt, "pw", .yescrypt),
        (Fixture.md5crypt, "md5 pw", .md5crypt),
        ("$1$$I2o9Z7NcvQAKp7wyCTlia0", "password", .md5crypt),
        (Fixture.descrypt, "des-pw", .descrypt),
        // Other libcrypt methods, recognised by asking libcrypt: scrypt, GOST yescrypt, BSDi DES, NetBSD SHA-1.
        ("$7$CU..../....d69w5Kf1jAeK.0CnE2xTa/$gHEFC4IWp/5vBb5FOGA02rqVw5k0xdFhnQ56nmHxLvA", "pw",
         .otherCrypt(method: "$7", legacy: false)),
        ("$gy$j9T$7f8IEfhk.dEtv5SExXnAy1$w8xH1drkL7PBHSNghuSSqU0Nr2h/C75To.rPvJSO8TB", "pw",
         .otherCrypt(method: "$gy", legacy: false)),
        ("_J9..XTvAIWbOUdLTgAg", "pw", .otherCrypt(method: "_", legacy: true)),
        ("$sha1$216456$LqcHf1I472Vpe/w2xzXc$oOXnyjQR2o10WbwepTyzLV9eCjbo", "pw", .otherCrypt(method: "$sha1", legacy: true)),
    ]

    @Test(arguments: vectors.indices)
    func rightPasswordMatchesWrongDoesNot(_ i: Int) {
        let v = Self.vectors[i]
        #expect(HashFormat(hash: v.hash) == v.format)
        #expect(verify(v.password, v.hash))
        #expect(!verify(v.password + "x", v.hash))
        #expect(!verify("", v.hash) || v.password.isEmpty)
        #expect(!verify(String(v.password.dropLast()), v.hash) || v.password.isEmpty)
    }

    @Test func freshHtpasswdHashesVerify() throws {
        for (flags, format) in [("-nbB", HashFormat.bcrypt(cost: 5)), ("-nbm", .apr1), ("-nbs", .sha1)] {
            var arguments = [flags, "user", "Tr0ub4dor&3:x"]
            if flags == "-nbB" { arguments = ["-nbB", "-C", "5", "user", "Tr0ub4dor&3:x"] }
            guard let out = try htpasswd(arguments) else { return }
            let line = out.split(separator: "\n").first.map(String.init) ?? ""
            let hash = String(line.dropFirst("user:".count))
            #expect(HashFormat(hash: hash) == format)
            #expect(verify("Tr0ub4dor&3:x", hash))
            #expect(!verify("Tr0ub4dor&3:y", hash))
        }
    }

    /// What nginx admins have: `openssl passwd -1` (MD5-crypt) and `htpasswd -d` (DES crypt), both verified by
    /// libcrypt. DES counts only the first 8 bytes of a password, so the passwords here are shorter.
    @Test func freshOpensslMD5CryptAndHtpasswdDESHashesVerify() throws {
        if let md5 = try run("/usr/bin/openssl", ["passwd", "-1", "Tr0ub4dor&3:x"]) {
            let hash = String(md5.split(separator: "\n").first ?? "")
            #expect(HashFormat(hash: hash) == .md5crypt, "\(hash)")
            #expect(verify("Tr0ub4dor&3:x", hash))
            #expect(!verify("Tr0ub4dor&3:y", hash))
        }
        if let out = try htpasswd(["-nbd", "user", "Tr0:b4d"]) {
            let hash = String((out.split(separator: "\n").first ?? "").dropFirst("user:".count))
            #expect(HashFormat(hash: hash) == .descrypt, "\(hash)")
            #expect(verify("Tr0:b4d", hash))
            #expect(!verify("Tr0:b4e", hash))
        }
    }

    @Test func cryptFailureIsNoMatch() {
        // Cost 99 is out of range: libxcrypt answers "*0", which must never count as a hash or a match.
        let bad = "$2y$99$eoFKIWeP.n2B4S3ZXO1bneVNAH1cx4h1DV9Plmqq7A82tK4b5nSve"
        #expect(PasswordCrypt.crypt(password: Array("secret".utf8), setting: bad) == nil)
        #expect(!PasswordVerifier.verify(password: Array("secret".utf8), against: bad, format: .bcrypt(cost: 99)))
        #expect(!PasswordVerifier.verify(password: Array("*0".utf8), against: "*0", format: .sha512crypt))
        // A NUL byte would truncate the C string: refused rather than matched against the prefix.
        #expect(!PasswordVerifier.verify(password: Array("secret".utf8) + [0, 65], against: Fixture.bcrypt5,
                                         format: .bcrypt(cost: 5)))
    }

    @Test func bcryptGenerationRoundTrips() throws {
        let hash = try #require(PasswordCrypt.bcrypt(password: Array("hunter2".utf8), cost: 4))
        #expect(hash.hasPrefix("$2y$04$"))
        #expect(hash.utf8.count == 60)
        #expect(HashFormat(hash: hash) == .bcrypt(cost: 4))
        #expect(verify("hunter2", hash))
        #expect(!verify("hunter3", hash))
        #expect(PasswordCrypt.bcrypt(password: [], cost: 3) == nil)
        #expect(PasswordCrypt.bcrypt(password: Array("a".utf8), cost: 4) != PasswordCrypt.bcrypt(password: Array("a".utf8), cost: 4))
    }

    @Test func unknownAndMalformedFormatsAreNotRecognised() {
        for hash in ["abJnggxhB/yW", "abJnggxhB/yWI!", "$1$abc$def", "$1$saltsalt9$lAu4Yl1EiCfuGFoLFgSVa1", "$7$",
                     "$sha1$x", "$gy$j9T$abc$", "_J9..abcd", "!locked", "*", "$2y$05$short", "$2q$05$" + Fixture.bcrypt5.dropFirst(7),
                     "$2y$03$" + Fixture.bcrypt5.dropFirst(7), "{SHA}notbase64!", "{SHA}" + "YWJj",
                     "{SSHA}YWJj", "$5$", "$6$salt$", "plain"] {
            #expect(HashFormat(hash: hash) == nil, "\(hash)")
        }
    }

    @Test func overlongPasswordsAreRefused() {
        let long = [UInt8](repeating: 65, count: PasswordVerifier.maxPasswordBytes + 1)
        #expect(!PasswordVerifier.verify(password: long, against: "{PLAIN}" + String(repeating: "A", count: long.count),
                                         format: .plain))
    }
}
