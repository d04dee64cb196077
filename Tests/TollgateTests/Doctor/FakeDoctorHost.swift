import Foundation
@testable import Tollgate
import TollgateIO

/// A host for `Doctor` that answers from a temporary proc tree, canned command outputs and canned Ollama answers:
/// nothing about the machine running the tests reaches a check.
final class FakeDoctorHost: DoctorHost, @unchecked Sendable {
    let root: String
    var procRoot: String { root + "/proc" }
    var nowSeconds: Int64 = 1_800_000_000
    var uid: UInt32 = 0
    /// Command outputs by their arguments joined with spaces; a missing key is "not installed".
    var commands: [String: ChildProcess.Output] = [:]
    /// Ollama's answers by path; a missing path fails as "connection refused".
    var answers: [String: HTTPFetch.Result] = [:]
    /// What each fetch asked: "Host path".
    var fetched: [String] = []
    var synchronized: Bool?
    var free: UInt64? = 100 << 30
    let real = SystemDoctorHost()

    init() throws {
        root = FileManager.default.temporaryDirectory.path + "/doctor-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/proc/net", withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Writes `text` at `relative` under the fake root, making its folders.
    func write(_ relative: String, _ text: String) throws {
        let path = root + "/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// A process `pid` named `command` holding the socket `inode`.
    func process(_ pid: Int, _ command: String, holding inode: UInt64) throws {
        try write("proc/\(pid)/comm", command + "\n")
        try FileManager.default.createDirectory(atPath: procRoot + "/\(pid)/fd", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: procRoot + "/\(pid)/fd/3", withDestinationPath: "socket:[\(inode)]")
    }

    /// Ollama answering `version` and the models given as (name, size).
    func ollama(version: String = "0.12.3", models: [(String, UInt64)]) {
        answers["/api/version"] = .response(status: 200, body: Array("{\"version\":\"\(version)\"}".utf8))
        let list = models.map { "{\"name\":\"\($0.0)\",\"model\":\"\($0.0)\",\"size\":\($0.1)}" }.joined(separator: ",")
        answers["/api/tags"] = .response(status: 200, body: Array("{\"models\":[\(list)]}".utf8))
    }

    func now() -> Int64 { nowSeconds }
    func userID() -> UInt32 { uid }
    func readFile(_ path: String) -> [UInt8]? { real.readFile(path) }
    func exists(_ path: String) -> Bool { real.exists(path) }
    func directoryEntries(_ path: String) -> [String]? { real.directoryEntries(path) }
    func readLink(_ path: String) -> String? { real.readLink(path) }
    func freeBytes(_ path: String) -> UInt64? { free }
    func clockSynchronized() -> Bool? { synchronized }
    func run(_ arguments: [String]) -> ChildProcess.Output? { commands[arguments.joined(separator: " ")] }
    func fetch(_ address: SocketAddress, host: String, path: String, timeoutMillis: Int32) -> HTTPFetch.Result {
        fetched.append("\(host) \(path)")
        return answers[path] ?? .failed("Connection refused")
    }
    func verifyChain(_ certificate: TLSCertificate, caFile: String?, at time: Int64) -> CertificateChainVerdict {
        real.verifyChain(certificate, caFile: caFile, at: time)
    }
}

/// A subject with the configuration `lines` (config-file syntax) and nothing else.
func doctorSubject(_ lines: String = "listen-plain = 127.0.0.1:8080\nmetrics-listen = off\n",
                   usersPath: String? = nil) -> Doctor.Subject {
    let path = FileManager.default.temporaryDirectory.path + "/doctor-\(UUID().uuidString).conf"
    try? lines.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let loaded = ServerConfig.load(flags: [:], environment: [:], configPath: path)
    return Doctor.Subject(config: loaded.config, configPath: path, problems: loaded.problems.map(\.description),
                          usersPath: usersPath)
}

/// The check named `name` among `checks`.
func check(_ name: String, in checks: [DoctorCheck]) -> DoctorCheck? {
    checks.first { $0.name == name }
}

/// /proc/net/tcp's header line.
let tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

/// One /proc/net/tcp line for a socket at `local` (kernel hex) in `state`.
func tcpLine(_ local: String, state: String = "0A", inode: UInt64) -> String {
    "   0: \(local) 00000000:0000 \(state) 00000000:00000000 00:00000000 00000000   997        0 \(inode) 1 0000000000000000 100 0 0 10 0\n"
}
