import Foundation
import Glibc
import Testing
import TollgateIO
@testable import Tollgate

/// The ACME settings (each problem at its file and line) and the store in `state-dir`/acme (0700 folder, 0600
/// files, the issued pair read back for a restart).
@Suite struct ACMESettingsTests {
    private func load(_ text: String) -> (problems: [String], config: ServerConfig, path: String) {
        let path = NSTemporaryDirectory() + "tollgate-acme-\(getpid())-\(UUID().uuidString).conf"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        defer { unlink(path) }
        let loaded = ServerConfig.load(flags: [:], environment: [:], configPath: path, cores: 1)
        return (loaded.problems.map(\.description), loaded.config, path)
    }

    @Test func defaultsAreOffAndLetsEncryptProduction() {
        let (problems, config, _) = load("")
        #expect(problems.isEmpty)
        #expect(config.acmeDomains.isEmpty)
        #expect(config.acmeCA == "https://acme-v02.api.letsencrypt.org/directory")
        #expect(config.acmeEmail == nil && config.acmeCARoot == nil)
    }

    @Test func domainsAreRepeatableAndStagingIsAShorthand() {
        let (problems, config, _) = load("""
            acme-domain = Ollama.Tollgate.test
            acme-domain = api.tollgate.test
            acme-email = ops@example.com
            acme-ca = staging
            acme-ca-root = /etc/ssl/private-ca.pem
            """)
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.acmeDomains == ["ollama.tollgate.test", "api.tollgate.test"])
        #expect(config.acmeEmail == "ops@example.com")
        #expect(config.acmeCA == "https://acme-staging-v02.api.letsencrypt.org/directory")
        #expect(config.acmeCARoot == "/etc/ssl/private-ca.pem")
    }

    @Test func badValuesNameTheFileAndLine() {
        let (problems, _, path) = load("""
            acme-domain = ok.tollgate.test
            acme-domain = *.tollgate.test
            acme-domain = not_a_name
            acme-email = nobody
            acme-ca = http://acme.example.com/directory
            acme-domain = Ollama.EXAMPLE.com
            """)
        #expect(problems.count == 5, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("\(path):2:") && $0.contains("wildcard") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("\(path):3:") && $0.contains("not a domain name") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("\(path):4:") && $0.contains("email") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("\(path):5:") && $0.contains("https") }, "\(problems)")
        // The example config's placeholder: no CA issues for it, so it is refused before any order.
        #expect(problems.contains { $0.hasPrefix("\(path):6:") && $0.contains("ollama.example.com is an example name") },
                "\(problems)")
    }

    @Test func aDomainWithoutATLSListenerIsAProblem() {
        let (problems, _, path) = load("listen-plain = 127.0.0.1:8080\nacme-domain = a.tollgate.test\n")
        #expect(problems.count == 1 && problems[0].hasPrefix("\(path):2:") && problems[0].contains("TLS listener"),
                "\(problems)")
    }

    @Test func theStoreIsPrivateAndKeepsTheIssuedPair() throws {
        let state = NSTemporaryDirectory() + "tollgate-acme-store-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let store = ACMEStore(directory: ACMEStore.directory(inStateDirectory: state))
        try store.prepare()
        var info = stat()
        #expect(stat(store.directory, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(try store.issued() == nil)

        let account = try store.accountKey()
        #expect(try store.accountKey().thumbprint == account.thumbprint, "the account key is kept")
        #expect(stat(store.accountKeyPath, &info) == 0 && info.st_mode & 0o777 == 0o600)

        // A self-signed pair for the names, standing in for an issued chain.
        #expect(try store.ensureSelfSigned(domains: ["a.example.com"]))
        #expect(try !store.ensureSelfSigned(domains: ["a.example.com"]), "a usable one is kept")
        let chain = try [UInt8](Data(contentsOf: URL(fileURLWithPath: store.selfSignedPath)))
        let key = try [UInt8](Data(contentsOf: URL(fileURLWithPath: store.selfSignedKeyPath)))
        try store.save(IssuedCertificate(chain: chain, key: key), domains: ["a.example.com", "b.example.com"])
        for path in [store.chainPath, store.keyPath, store.domainsPath] {
            #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600, "\(path)")
        }
        let stored = try #require(try store.issued())
        #expect(stored.covers(["b.example.com", "a.example.com"]) && !stored.covers(["a.example.com"]))
        let lifetime = stored.certificate.notAfter - stored.certificate.notBefore
        #expect(lifetime > 0 && stored.renewalDue == stored.certificate.notAfter - lifetime / 3)
    }
}
