import COpenSSL
import Testing
@testable import TollgateIO

/// Attacks on the no-op certificate callback (set for keys TLS 1.3 can sign with, so OpenSSL skips its per-handshake
/// "is TLS 1.3 possible?" curve lookup): keys at the edge of that test, TLS 1.2 beside it, session resumption across
/// the two versions, and a certificate reload that changes the key's kind.
@Suite(.serialized) struct CertAttackTests {
    /// A certificate and key of `kind` made with `openssl` in `dir` (names prefixed by `name`).
    /// Kinds: "ec:CURVE", "ec-explicit:CURVE" (the curve's parameters spelled out, not named), "rsa:BITS",
    /// "rsa-pss", "rsa-pss-sha512" (a key restricted to PSS with SHA-512), or an algorithm ("ed448").
    static func make(_ kind: String, in dir: OpsTempDirectory, name: String = "leaf") throws -> (cert: String, key: String) {
        let cert = dir.file("\(name).pem"), key = dir.file("\(name)-key.pem")
        let parts = kind.split(separator: ":").map(String.init)
        var arguments = ["req", "-x509", "-days", "2", "-subj", "/CN=localhost", "-addext",
                         "subjectAltName=DNS:localhost", "-out", cert]
        switch parts[0] {
        case "ec-explicit":
            let made = try #require(ChildProcess.run(["openssl", "ecparam", "-name", parts[1], "-param_enc", "explicit",
                                                      "-genkey", "-noout", "-out", key], timeoutMillis: 30_000))
            try #require(made.status == 0, "openssl ecparam: \(made.text)")
            arguments += ["-new", "-key", key]
        case "ec": arguments += ["-nodes", "-keyout", key, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:\(parts[1])"]
        case "rsa": arguments += ["-nodes", "-keyout", key, "-newkey", "rsa:\(parts[1])"]
        case "rsa-pss": arguments += ["-nodes", "-keyout", key, "-newkey", "rsa-pss", "-pkeyopt", "rsa_keygen_bits:2048"]
        case "rsa-pss-sha512":
            arguments += ["-nodes", "-keyout", key, "-newkey", "rsa-pss", "-pkeyopt", "rsa_keygen_bits:2048",
                          "-pkeyopt", "rsa_pss_keygen_md:sha512", "-pkeyopt", "rsa_pss_keygen_mgf1_md:sha512",
                          "-pkeyopt", "rsa_pss_keygen_saltlen:64"]
        default: arguments += ["-nodes", "-keyout", key, "-newkey", parts[0]]
        }
        let made = try #require(ChildProcess.run(["openssl"] + arguments, timeoutMillis: 30_000))
        try #require(made.status == 0, "openssl \(arguments): \(made.text)")
        return (cert, key)
    }

    private func checkVersionRequest(_ client: HTTPClient) throws {
        try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(try client.readResponse().status == 200)
    }

    /// A connection that offers the brainpool groups too: in TLS 1.2 an EC certificate's curve must be one the client
    /// offers (RFC 8422 section 5.1), so without them a brainpool certificate fails with or without the callback.
    private func connect(_ proxy: Proxy, maxVersion: Int32 = 0, session: TLSClientSession? = nil) throws -> TLSStream {
        try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(
            maxVersion: maxVersion, session: session, verifies: false,
            groups: "X25519:P-256:P-384:P-521:brainpoolP256r1:brainpoolP512r1"))
    }

    /// Keys at the edge of the callback's test get the version OpenSSL alone gives them (the commit's parent): an EC
    /// key whose P-256 parameters are spelled out is still P-256 (TLS 1.3 signs with it); brainpool spelled out is
    /// still brainpool (TLS 1.2, not a failed handshake); P-521, Ed448 and RSA-PSS keys (restricted to SHA-512 too)
    /// TLS 1.3. A TLS 1.2-only client completes its handshake with every one of them.
    @Test(arguments: [("ec-explicit:prime256v1", TLS1_3_VERSION), ("ec-explicit:brainpoolP256r1", TLS1_2_VERSION),
                      ("ec:P-521", TLS1_3_VERSION), ("ed448", TLS1_3_VERSION), ("rsa-pss", TLS1_3_VERSION),
                      ("rsa-pss-sha512", TLS1_3_VERSION), ("ec:brainpoolP512r1", TLS1_2_VERSION)])
    func edgeKeysGetTheVersionOpenSSLWouldGiveThem(kind: String, expected: Int32) throws {
        let dir = try OpsTempDirectory()
        let (cert, key) = try Self.make(kind, in: dir)
        try withProxyAndFake(configure: { $0.certificatePath = cert; $0.keyPath = key }) { proxy, _ in
            let stream = try connect(proxy)
            #expect(stream.version == expected, "\(kind)")
            try checkVersionRequest(HTTPClient(stream))
            stream.close()
            let tls12 = try connect(proxy, maxVersion: TLS1_2_VERSION)
            #expect(tls12.version == TLS1_2_VERSION, "\(kind)")
            try checkVersionRequest(HTTPClient(tls12))
        }
    }

    /// An RSA key below the security level is refused when the context is built, with or without the callback.
    @Test func anRSAKeyBelowTheSecurityLevelIsRefused() throws {
        let dir = try OpsTempDirectory()
        let (cert, key) = try Self.make("rsa:1024", in: dir)
        #expect(throws: SocketError.self) { _ = try TLSContext(certificatePath: cert, keyPath: key) }
    }

    /// Resumption with and without the callback (P-256 has it, brainpool not): a session resumes at its own version;
    /// a TLS 1.2 session offered by a client that also offers TLS 1.3 resumes only where TLS 1.3 is impossible (with
    /// P-256 the server picks TLS 1.3 and makes a full handshake, as OpenSSL does without the callback).
    @Test(arguments: [("ec:P-256", true), ("ec:brainpoolP256r1", false)])
    func resumptionAcrossVersionsWithAndWithoutTheCallback(kind: String, tls13: Bool) throws {
        let dir = try OpsTempDirectory()
        let (cert, key) = try Self.make(kind, in: dir)
        try withProxyAndFake(configure: { $0.certificatePath = cert; $0.keyPath = key }) { proxy, _ in
            let (sameVersion, upgraded, upgradedVersion) = try withSteadyCache { () throws -> (Bool, Bool, Int32) in
                let first = try connect(proxy, maxVersion: TLS1_2_VERSION)
                try checkVersionRequest(HTTPClient(first))
                let session = try #require(first.session())
                first.close()
                let again = try connect(proxy, maxVersion: TLS1_2_VERSION, session: session)
                try checkVersionRequest(HTTPClient(again))
                let sameVersion = again.sessionReused
                again.close()
                let newer = try connect(proxy, session: session)
                try checkVersionRequest(HTTPClient(newer))
                defer { newer.close() }
                return (sameVersion, newer.sessionReused, newer.version)
            }
            #expect(sameVersion, "\(kind)")
            #expect(upgradedVersion == (tls13 ? TLS1_3_VERSION : TLS1_2_VERSION), "\(kind)")
            #expect(upgraded == !tls13, "\(kind)")
            if tls13 {
                let resumed = try withSteadyCache { () throws -> Bool in
                    let first = try connect(proxy)
                    try checkVersionRequest(HTTPClient(first))
                    let session = try #require(first.session())
                    first.close()
                    let again = try connect(proxy, session: session)
                    defer { again.close() }
                    try checkVersionRequest(HTTPClient(again))
                    return again.sessionReused && again.version == TLS1_3_VERSION
                }
                #expect(resumed, "\(kind)")
            }
        }
    }

    /// A reload that changes the key's kind sets or clears the callback to match: P-256 → brainpool serves TLS 1.2
    /// (a kept callback would make every TLS 1.3 client fail), brainpool → P-256 serves TLS 1.3 again, and a reload
    /// to a mismatched pair keeps the running certificate and its version.
    @Test func aReloadThatChangesTheKeyKindFollowsIt() throws {
        let dir = try OpsTempDirectory()
        let live = (cert: dir.file("live.pem"), key: dir.file("live-key.pem"))
        let p256 = try Self.make("ec:P-256", in: dir, name: "p256")
        let brainpool = try Self.make("ec:brainpoolP256r1", in: dir, name: "bp")
        func install(_ pair: (cert: String, key: String)) throws {
            try OpsFiles.install(pair.key, as: live.key)
            try OpsFiles.install(pair.cert, as: live.cert)
        }
        try install(p256)
        try withProxyAndFake(configure: { $0.certificatePath = live.cert; $0.keyPath = live.key }) { proxy, _ in
            #expect(try connect(proxy).version == TLS1_3_VERSION)
            try install(brainpool)
            #expect(proxy.server.reloadCertificate())
            let afterBrainpool = try connect(proxy)
            #expect(afterBrainpool.version == TLS1_2_VERSION)
            try checkVersionRequest(HTTPClient(afterBrainpool))
            afterBrainpool.close()
            try install(p256)
            #expect(proxy.server.reloadCertificate())
            let afterP256 = try connect(proxy)
            #expect(afterP256.version == TLS1_3_VERSION)
            try checkVersionRequest(HTTPClient(afterP256))
            afterP256.close()
            // A brainpool certificate with the P-256 key: refused, and the P-256 pair keeps serving TLS 1.3.
            try OpsFiles.install(brainpool.cert, as: live.cert)
            #expect(!proxy.server.reloadCertificate())
            let afterMismatch = try connect(proxy)
            #expect(afterMismatch.version == TLS1_3_VERSION)
            try checkVersionRequest(HTTPClient(afterMismatch))
        }
    }
}
