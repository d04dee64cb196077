import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// Helpers of the login attack tests: the usage ledger's rows after a run,
/// and names compared as bytes (Swift's `==` hides a second spelling; Redis and SQLite do not).
enum AuthLoginAttack {
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
