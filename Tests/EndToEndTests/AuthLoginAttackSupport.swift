import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// Helpers of the login attack tests: a proxy with a key store (API keys), the usage ledger's rows after a run,
/// and names compared as bytes (Swift's `==` hides a second spelling; Redis and SQLite do not).
enum AuthLoginAttack {
    /// As `withProxyAndFake`, with `keyStore` holding the API keys (the server loads them at start).
    static func withProxy(keyStore: (any KeyStore)?, configure: (inout ServerConfig) -> Void,
                          body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let fake = try FakeOllamaHarness.start()
        defer { fake.stop() }
        let certificates = TestCertificates.shared
        var config = ServerConfig()
        config.listen = [SocketAddress(parsing: "127.0.0.1:0")!]
        config.listenPlain = [SocketAddress(parsing: "127.0.0.1:0")!]
        config.certificatePath = certificates.certificatePath
        config.keyPath = certificates.keyPath
        config.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(fake.port)")!
        config.workers = 1
        config.accessLog = .none
        config.metricsListen = []
        config.rateLimit = nil
        configure(&config)
        let server = try Server(config: config, keyStore: keyStore)
        server.start()
        let proxy = Proxy(server: server, upstream: fake, tlsPort: server.tlsAddresses.first?.port ?? 0,
                          plainPort: server.plainAddresses.first?.port, redirectPort: server.redirectAddresses.first?.port)
        defer { stop(server) }
        try body(proxy, fake)
    }

    /// A fresh state database path in a temporary directory (the state directory itself is created by the server).
    static func databasePath() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-loginatk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return StateDatabase.path(in: url.path + "/state")
    }

    /// The ledger's user column, row by row, as bytes (read after the server stopped: every row is written).
    static func ledgerUsers(_ path: String) throws -> [[UInt8]] {
        try UsageStore(reading: path).rows().map { Array(($0.user ?? "").utf8) }
    }

    /// A name as the bytes it is sent and stored as.
    static func utf8(_ name: String) -> [UInt8] { Array(name.utf8) }

    /// `Authorization: Bearer <token>` for an API key.
    static func keyHeader(_ token: APIKeyToken, claiming user: String? = nil) -> String {
        "Authorization: Bearer \(user.map { "\($0):" } ?? "")\(token.secretText)\r\n"
    }
}

/// An `ollama` CLI key (ed25519, fixed seed) and the signed header it sends.
struct AuthLoginAttackCLIKey {
    let key: Ed25519PrivateKey
    let keyText: String

    init(seed: UInt8) {
        key = Ed25519PrivateKey(seed: [UInt8](repeating: seed, count: 32))
        let blob: [UInt8] = [0, 0, 0, 11] + Array("ssh-ed25519".utf8) + [0, 0, 0, 32] + key.publicRaw
        keyText = Data(blob).base64EncodedString()
    }

    /// Its `authorized-keys` line for `user`.
    func line(_ user: String) -> String { "ssh-ed25519 \(keyText) \(user)" }

    /// `Authorization: KEY:SIG` over `METHOD,PATH?ts=TS`.
    func header(_ method: String, _ path: String, ts: Int64) -> String {
        let signature = key.sign(Array("\(method),\(path)?ts=\(ts)".utf8))
        return "Authorization: \(keyText):\(Data(signature).base64EncodedString())\r\n"
    }
}
