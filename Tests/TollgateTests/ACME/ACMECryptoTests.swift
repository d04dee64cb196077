import Foundation
import Testing
import TollgateIO
@testable import Tollgate

/// The ACME cryptography checked back with OpenSSL itself: the `openssl` command reads the keys, requests and
/// challenge certificates these functions write.
@Suite struct ACMECryptoTests {
    private func write(_ bytes: [UInt8], _ name: String, in directory: String) throws -> String {
        let path = directory + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func openssl(_ arguments: [String]) throws -> String {
        let output = try #require(ChildProcess.run(["openssl"] + arguments))
        #expect(output.status == 0, "openssl \(arguments.joined(separator: " ")): \(output.text)")
        return output.text
    }

    @Test func base64URL() {
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.encode(Array("{\"a\":1}".utf8)) == "eyJhIjoxfQ")
        #expect(Base64URL.encode([]) == "")
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("eyJhIjoxfQ") == Array("{\"a\":1}".utf8))
        #expect(Base64URL.decode("+/8") == nil)
        #expect(Base64URL.decode("eyJhIjoxfQ==") == nil)
        #expect(Base64URL.decode("a") == nil)
    }

    @Test func keyRoundTripsThroughPEM() throws {
        let key = P256Key()
        let again = try #require(P256Key(pem: key.pem))
        #expect(again.publicCoordinates == key.publicCoordinates)
        #expect(String(decoding: key.pem, as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(P256Key(pem: Array("not a key".utf8)) == nil)
    }

    @Test func otherCurvesAreRefused() throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/p384.pem"
        _ = try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", path])
        #expect(P256Key(pem: Array(try Data(contentsOf: URL(fileURLWithPath: path)))) == nil)
        let sec1 = directory + "/p256.pem"
        _ = try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", sec1])
        #expect(P256Key(pem: Array(try Data(contentsOf: URL(fileURLWithPath: sec1)))) != nil)
    }

    @Test func es256SignaturesVerify() throws {
        let key = P256Key()
        let message = Array("eyJhbGciOiJFUzI1NiJ9.e30".utf8)
        let signature = key.signES256(message)
        #expect(signature.count == 64)
        #expect(key.verifyES256(signature, of: message))
        #expect(!key.verifyES256(signature, of: message + [0x20]))
        #expect(!P256Key().verifyES256(signature, of: message))
        var flipped = signature
        flipped[40] ^= 1
        #expect(!key.verifyES256(flipped, of: message))
        #expect(key.verifyES256(key.signES256([]), of: []))
    }

    /// The JWK's coordinates are the ones OpenSSL's own encoding of the public key holds (the last 64 bytes of the
    /// SubjectPublicKeyInfo, after the uncompressed point's 0x04), and the thumbprint is RFC 7638's.
    @Test func jwkAndThumbprint() throws {
        let directory = try makeTemporaryDirectory()
        let key = P256Key()
        let keyPath = try write(key.pem, "key.pem", in: directory)
        let spki = directory + "/pub.der"
        _ = try openssl(["pkey", "-in", keyPath, "-pubout", "-outform", "DER", "-out", spki])
        let der = Array(try Data(contentsOf: URL(fileURLWithPath: spki)))
        #expect(der[der.count - 65] == 0x04)
        let x = Array(der[(der.count - 64)..<(der.count - 32)])
        let y = Array(der[(der.count - 32)...])
        let account = AccountKey(key)
        let parsed = try #require(DoctorJSON.parse(Array(account.jwk.utf8)))
        #expect(parsed["kty"]?.stringValue == "EC")
        #expect(parsed["crv"]?.stringValue == "P-256")
        #expect(parsed["x"]?.stringValue.flatMap(Base64URL.decode) == x)
        #expect(parsed["y"]?.stringValue.flatMap(Base64URL.decode) == y)
        let canonical = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(Base64URL.encode(x))\",\"y\":\"\(Base64URL.encode(y))\"}"
        #expect(account.thumbprint == Base64URL.encode(Digest.sha256(Array(canonical.utf8))))
        #expect(account.keyAuthorization(token: "tok") == "tok." + account.thumbprint)
    }

    @Test func jwsVerifies() throws {
        let account = AccountKey(P256Key())
        let body = account.sign(url: "https://ca.example/new-order", nonce: "n1", payload: "{\"a\":1}", as: .kid("https://ca.example/acct/1"))
        let jws = try #require(DoctorJSON.parse(body))
        let protected64 = try #require(jws["protected"]?.stringValue)
        let payload64 = try #require(jws["payload"]?.stringValue)
        let signature = try #require(jws["signature"]?.stringValue.flatMap(Base64URL.decode))
        #expect(account.key.verifyES256(signature, of: Array((protected64 + "." + payload64).utf8)))
        let headerBytes = try #require(Base64URL.decode(protected64))
        let header = try #require(DoctorJSON.parse(headerBytes))
        #expect(header["alg"]?.stringValue == "ES256")
        #expect(header["kid"]?.stringValue == "https://ca.example/acct/1")
        #expect(header["jwk"] == nil)
        #expect(header["nonce"]?.stringValue == "n1")
        #expect(header["url"]?.stringValue == "https://ca.example/new-order")
        #expect(Base64URL.decode(payload64) == Array("{\"a\":1}".utf8))

        let asGet = try #require(DoctorJSON.parse(account.sign(url: "u", nonce: "n", payload: nil, as: .jwk)))
        #expect(asGet["payload"]?.stringValue == "")
        let header2 = try #require(asGet["protected"]?.stringValue.flatMap(Base64URL.decode).flatMap(DoctorJSON.parse))
        #expect(header2["jwk"]?["x"] != nil)
        #expect(header2["kid"] == nil)
    }

    @Test func certificateRequestParsesBack() throws {
        let directory = try makeTemporaryDirectory()
        let key = P256Key()
        let der = try #require(key.certificateRequest(domains: ["a.example", "b.example"]))
        let path = try write(der, "req.der", in: directory)
        let text = try openssl(["req", "-inform", "DER", "-in", path, "-noout", "-text", "-verify"])
        #expect(text.contains("verify OK") || text.contains("Certificate request self-signature verify OK"))
        #expect(text.contains("DNS:a.example, DNS:b.example"))
        #expect(text.contains("CN = a.example") || text.contains("CN=a.example"))
        #expect(text.contains("NIST CURVE: P-256") || text.contains("prime256v1"))
        #expect(text.contains("ecdsa-with-SHA256"))
        #expect(key.certificateRequest(domains: []) == nil)
        #expect(key.certificateRequest(domains: ["a.example,DNS:evil.example"]) == nil)
    }

    @Test func challengeCertificateCarriesTheKeyAuthorizationDigest() throws {
        let directory = try makeTemporaryDirectory()
        let key = P256Key()
        let digest = Digest.sha256(Array("token.thumbprint".utf8))
        let pem = try #require(key.challengeCertificate(domain: "a.example", keyAuthorizationDigest: digest))
        let path = try write(pem, "challenge.pem", in: directory)
        let text = try openssl(["x509", "-in", path, "-noout", "-text"])
        #expect(text.contains("DNS:a.example"))
        #expect(text.contains("1.3.6.1.5.5.7.1.31: critical"))
        // The extension's value, re-read as DER: an OCTET STRING of the 32 digest bytes.
        let derPath = directory + "/challenge.der"
        _ = try openssl(["x509", "-in", path, "-outform", "DER", "-out", derPath])
        let cert = Array(try Data(contentsOf: URL(fileURLWithPath: derPath)))
        // OID 1.3.6.1.5.5.7.1.31, BOOLEAN TRUE, OCTET STRING { OCTET STRING (32) digest }.
        let expected: [UInt8] = [0x06, 0x08, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1F, 0x01, 0x01, 0xFF,
                                 0x04, 0x22, 0x04, 0x20] + digest
        #expect(cert.firstRange(of: expected) != nil)
        // Self-signed by the key given.
        let keyPath = try write(key.pem, "key.pem", in: directory)
        let verified = try openssl(["verify", "-ignore_critical", "-CAfile", path, "-check_ss_sig", path])
        #expect(verified.contains("OK"))
        let modulus1 = try openssl(["pkey", "-in", keyPath, "-pubout"])
        let modulus2 = try openssl(["x509", "-in", path, "-noout", "-pubkey"])
        #expect(modulus1 == modulus2)
        #expect(key.challengeCertificate(domain: "a.example", keyAuthorizationDigest: [1, 2]) == nil)
    }
}
