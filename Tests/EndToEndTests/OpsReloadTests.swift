import FakeOllama
import Testing
import Tollgate
import TollgateIO

/// Reloads without a restart: live settings apply to the next request, listener changes are reported as needing a
/// restart, and a renewed certificate is served to new connections while a stream opened before finishes.
@Suite struct OpsReloadTests {
    static let alice = Credential.basic("alice", "pw-a")

    static func withUsers(configure: @escaping (inout ServerConfig) -> Void = { _ in },
                          body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            configure(&config)
        }, body: body)
    }

    @Test func aChangedRealmAndBodyLimitApplyToTheNextRequest() throws {
        try Self.withUsers { proxy, fake in
            let show = Req.post("/api/show", #"{"model":"mistral:7b","verbose":false,"padding":"\#(String(repeating: "x", count: 200))"}"#, Self.alice)
            let client = try proxy.tls()
            defer { client.close() }
            #expect(try client.exchange(show).status == 200)
            #expect(try client.exchange(Req.get("/api/tags")).head.header("WWW-Authenticate")?.contains("realm=\"Tollgate\"") == true)

            var changed = proxy.server.config
            changed.realm = "Ollama at home"
            changed.bodyLimits.other = 64
            let messages = try proxy.server.reload(changed)
            #expect(messages == ["reloaded the configuration"], "\(messages)")
            // `reload` hands the config to each loop and returns; wait (bounded) until the loop has it.
            let applied = try waitUntil {
                try proxy.fetch(Req.get("/api/tags")).head.header("WWW-Authenticate")?.contains("Ollama at home") == true
            }
            #expect(applied)

            // The connection opened before the reload gets the new settings on its next request, as do new ones.
            let refused = try client.exchange(Req.get("/api/tags"))
            #expect(refused.status == 401)
            #expect(refused.head.header("WWW-Authenticate")?.contains("realm=\"Ollama at home\"") == true,
                    "\(refused.head.header("WWW-Authenticate") ?? "none")")
            expectError(try proxy.fetch(show), status: 413, family: .ollama)
            #expect(try proxy.fetch(Req.post("/api/show", #"{"model":"mistral:7b"}"#, Self.alice)).status == 200)
            #expect(fake.requests.map(\.target) == ["/api/show", "/api/show"])
            #expect(proxy.server.config.realm == "Ollama at home")
        }
    }

    @Test func aChangedListenerIsReportedAsNeedingARestartAndKeepsServing() throws {
        try Self.withUsers(configure: { $0.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!] }) { proxy, _ in
            var changed = proxy.server.config
            changed.listen = [SocketAddress(parsing: "127.0.0.1:1")!]
            changed.realm = "new realm"
            let messages = try proxy.server.reload(changed)
            #expect(messages.count == 2, "\(messages)")
            #expect(try waitUntil { try proxy.fetch(Req.get("/api/tags")).head.header("WWW-Authenticate")?.contains("new realm") == true })
            let restart = messages.last ?? ""
            #expect(restart.contains("listen") && restart.contains("restart"), "\(messages)")
            #expect(!restart.contains("realm"))
            #expect(proxy.server.config.listen != changed.listen)
            // Still on the old port; the live part of the reload took effect.
            let refused = try proxy.fetch(Req.get("/api/tags"))
            #expect(refused.head.header("WWW-Authenticate")?.contains("new realm") == true)
            #expect(try proxy.fetch(Req.get("/api/version", Self.alice)).status == 200)
            #expect(try MetricsScrape(proxy)["tollgate_reloads_total{what=\"config\",result=\"ok\"}"] == 1)
        }
    }

    @Test func aRenewedCertificateIsServedToNewConnectionsWhileAnOpenStreamFinishes() throws {
        let dir = try OpsTempDirectory()
        let certPath = dir.file("cert.pem"), keyPath = dir.file("key.pem")
        let shared = TestCertificates.shared
        try OpsFiles.install(shared.certificatePath, as: certPath)
        try OpsFiles.install(shared.keyPath, as: keyPath)
        let renewedCert = dir.file("renewed-cert.pem"), renewedKey = dir.file("renewed-key.pem")
        try DevelopmentCertificate.generate(keyPath: renewedKey, certificatePath: renewedCert, commonName: "localhost",
                                            subjectAltNames: "DNS:localhost,IP:127.0.0.1", days: 3,
                                            caKeyPath: OpsCertificates.caKeyPath, caCertificatePath: shared.caCertificatePath)
        let oldFingerprint = OpsCertificates.fingerprint(ofPEMFile: shared.certificatePath)
        let newFingerprint = OpsCertificates.fingerprint(ofPEMFile: renewedCert)
        try #require(!oldFingerprint.isEmpty && !newFingerprint.isEmpty && oldFingerprint != newFingerprint)

        try withProxyAndFake(configure: { config in
            config.certificatePath = certPath
            config.keyPath = keyPath
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, fake in
            let before = try PrefixedTLSStream(port: proxy.tlsPort)
            #expect(before.peerFingerprint == oldFingerprint)
            let streaming = HTTPClient(before)
            defer { streaming.close() }
            fake.stepMode = true
            defer { fake.stepMode = false }
            try streaming.send(Req.generate())
            fake.allowLines(1)
            #expect(try streaming.readHead().status == 200)
            #expect(try streaming.readLine()?.contains(#""done":false"#) == true)

            // certbot: the renewed pair replaces the files, then the reload.
            try OpsFiles.install(renewedKey, as: keyPath)
            try OpsFiles.install(renewedCert, as: certPath)
            #expect(proxy.server.reloadCertificate())

            let after = try PrefixedTLSStream(port: proxy.tlsPort)
            #expect(after.peerFingerprint == newFingerprint)
            let fresh = HTTPClient(after)
            defer { fresh.close() }
            #expect(try fresh.exchange(Req.get("/api/version")).status == 200)

            // The stream opened under the old certificate runs to its final line.
            var lines = 1
            while true {
                fake.allowLines(1)
                guard let line = try streaming.readLine() else { break }
                lines += 1
                try #require(lines <= 6, "no final line")
                if line.contains(#""done":true"#) { break }
            }
            #expect(lines == 6)
            #expect(try streaming.readChunk().data == nil)
            // ... and its connection keeps working.
            fake.stepMode = false
            #expect(try streaming.exchange(Req.get("/api/version")).status == 200)
            let scrape = try MetricsScrape(proxy)
            #expect(scrape["tollgate_reloads_total{what=\"certificate\",result=\"ok\"}"] == 1)
        }
    }

    @Test func aCertificateThatFailsToLoadChangesNothing() throws {
        let dir = try OpsTempDirectory()
        let certPath = dir.file("cert.pem"), keyPath = dir.file("key.pem")
        let shared = TestCertificates.shared
        try OpsFiles.install(shared.certificatePath, as: certPath)
        try OpsFiles.install(shared.keyPath, as: keyPath)
        let otherCert = dir.file("other-cert.pem"), otherKey = dir.file("other-key.pem")
        try DevelopmentCertificate.generate(keyPath: otherKey, certificatePath: otherCert, commonName: "localhost",
                                            subjectAltNames: "DNS:localhost", days: 3,
                                            caKeyPath: OpsCertificates.caKeyPath, caCertificatePath: shared.caCertificatePath)
        try withProxyAndFake(configure: { config in
            config.certificatePath = certPath
            config.keyPath = keyPath
        }) { proxy, _ in
            // Half a renewal: the new certificate beside the old key.
            try OpsFiles.install(otherCert, as: certPath)
            #expect(!proxy.server.reloadCertificate())
            let client = try PrefixedTLSStream(port: proxy.tlsPort)
            defer { client.close() }
            #expect(client.peerFingerprint == OpsCertificates.fingerprint(ofPEMFile: shared.certificatePath))
        }
    }

    @Test func aReloadWhoseCertificateFailsToLoadFailsWholeAndChangesNothing() throws {
        let dir = try OpsTempDirectory()
        try withProxyAndFake(configure: { config in
            config.realm = "Before"
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, _ in
            var changed = proxy.server.config
            changed.realm = "After"
            changed.certificatePath = dir.file("missing-cert.pem")
            changed.keyPath = dir.file("missing-key.pem")
            do throws(SocketError) {
                let messages = try proxy.server.reload(changed)
                Issue.record("a reload with a missing certificate succeeded: \(messages)")
            } catch {
                #expect(error.description.contains("missing-cert.pem"), "\(error)")
            }
            // Neither the realm nor the certificate paths were taken: the reload is reported failed as a whole.
            #expect(proxy.server.config.realm == "Before")
            #expect(proxy.server.config.certificatePath != changed.certificatePath)
            let scrape = try MetricsScrape(proxy)
            #expect(scrape["tollgate_reloads_total{what=\"config\",result=\"failed\"}"] == 1)
        }
    }
}
