import COpenSSL
import Testing
import TollgateIO

/// The TLS listener: protocol versions, ALPN and session resumption, seen from a verifying client.
@Suite(.serialized) struct TLSTests {
    /// A key that is not the certificate's is reported as such, not as an unreadable key.
    @Test func aKeyOfAnotherCertificateIsNamedAsNotMatching() throws {
        let dir = try OpsTempDirectory()
        let cert = dir.file("a.pem"), key = dir.file("a-key.pem"), otherCert = dir.file("b.pem"), otherKey = dir.file("b-key.pem")
        try DevelopmentCertificate.generate(keyPath: key, certificatePath: cert, commonName: "localhost", subjectAltNames: nil)
        try DevelopmentCertificate.generate(keyPath: otherKey, certificatePath: otherCert, commonName: "localhost",
                                            subjectAltNames: nil)
        do {
            _ = try TLSContext(certificatePath: cert, keyPath: otherKey)
            Issue.record("a key of another certificate was accepted")
        } catch {
            #expect(error.description == "private key \(otherKey) does not match certificate \(cert)")
        }
        _ = try TLSContext(certificatePath: cert, keyPath: key)
    }

    /// A GET /api/version over `client` answers 200 (the connection really works after the handshake).
    private func checkVersionRequest(_ client: HTTPClient) throws {
        try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.text.contains("\"version\""))
    }

    @Test func tls13HandshakeVerifiesAndServes() throws {
        try withProxyAndFake { proxy, _ in
            let stream = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(maxVersion: TLS1_3_VERSION))
            #expect(stream.version == TLS1_3_VERSION)
            #expect(stream.alpnProtocol == "http/1.1")
            try checkVersionRequest(HTTPClient(stream))
        }
    }

    /// Which protocol each kind of key gets: TLS 1.3 for those it can sign with, TLS 1.2 for an EC key on a curve
    /// TLS 1.3 has no signature scheme for (brainpool, secp256k1) rather than a failed handshake. Tollgate answers
    /// OpenSSL's per-handshake "is TLS 1.3 possible?" at once (a certificate callback) only for the former.
    @Test(arguments: [("ec:P-256", TLS1_3_VERSION), ("ec:P-384", TLS1_3_VERSION), ("rsa:2048", TLS1_3_VERSION),
                      ("ed25519", TLS1_3_VERSION), ("ec:brainpoolP256r1", TLS1_2_VERSION),
                      ("ec:secp256k1", TLS1_2_VERSION)])
    func eachKeyGetsTheHighestVersionItCanSignFor(key: String, expected: Int32) throws {
        let dir = try OpsTempDirectory()
        let cert = dir.file("cert.pem"), keyFile = dir.file("key.pem")
        let parts = key.split(separator: ":").map(String.init)
        var arguments = ["req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                         "-addext", "subjectAltName=DNS:localhost", "-keyout", keyFile, "-out", cert]
        switch parts[0] {
        case "ec": arguments += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:\(parts[1])"]
        case "rsa": arguments += ["-newkey", "rsa:\(parts[1])"]
        default: arguments += ["-newkey", parts[0]]
        }
        let made = try #require(ChildProcess.run(["openssl"] + arguments, timeoutMillis: 30_000))
        try #require(made.status == 0, "openssl \(arguments): \(made.text)")
        try withProxyAndFake(configure: { config in
            config.certificatePath = cert
            config.keyPath = keyFile
        }) { proxy, _ in
            let stream = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(
                verifies: false, groups: "X25519:P-256:P-384:brainpoolP256r1:secp256k1"))
            #expect(stream.version == expected, "\(key)")
            try checkVersionRequest(HTTPClient(stream))
        }
    }

    @Test func tls12HandshakeVerifiesAndServes() throws {
        try withProxyAndFake { proxy, _ in
            let stream = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(maxVersion: TLS1_2_VERSION))
            #expect(stream.version == TLS1_2_VERSION)
            #expect(stream.alpnProtocol == "http/1.1")
            try checkVersionRequest(HTTPClient(stream))
        }
    }

    @Test func tls11IsRefused() throws {
        try withProxyAndFake { proxy, fake in
            let options = TLSClientOptions(maxVersion: TLS1_1_VERSION, minVersion: TLS1_1_VERSION)
            #expect(throws: WireError.self) { _ = try TLSStream(port: proxy.tlsPort, options: options) }
            // The listener is still healthy afterwards.
            try checkVersionRequest(try proxy.tls())
            #expect(fake.requests.count == 1)
        }
    }

    @Test func aWrongHostNameFailsVerification() throws {
        try withProxyAndFake { proxy, _ in
            #expect(throws: WireError.self) {
                _ = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(hostname: "example.com"))
            }
        }
    }
}
