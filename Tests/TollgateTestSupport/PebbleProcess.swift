import Foundation
import Glibc
import Synchronization
import TollgateIO

/// Debian's `pebble` (Let's Encrypt's ACME test server) and `pebble-challtestsrv` (its fake DNS, answering
/// 127.0.0.1 for every name) as children on loopback, for the ACME tests. Pebble validates challenges by connecting
/// to 127.0.0.1 at `httpPort` and `tlsPort`, where the test puts Tollgate or its own responder.
public final class PebbleProcess: @unchecked Sendable {
    /// Whether both programs are installed (the suites are skipped with a message otherwise).
    public static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/pebble")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/pebble-challtestsrv")
    }

    /// The ACME directory URL.
    public var directoryURL: String { "https://127.0.0.1:\(acmePort)/dir" }
    /// The PEM file of the CA that signed Pebble's own HTTPS certificate (the client's `acme-ca-root`).
    public let serverRootFile: String
    /// The folder with Pebble's configuration and certificates.
    public let directory: String
    public let acmePort: UInt16
    public let managementPort: UInt16
    public let dnsPort: UInt16
    public let httpPort: UInt16
    public let tlsPort: UInt16
    /// Everything Pebble printed, for a failing test's message.
    public let logFile: String
    private var processes: [Process] = []

    private static let taken = Mutex<Set<UInt16>>([])

    /// A port no other test in this process was given (bound once and released).
    public static func freePort() throws -> UInt16 {
        for _ in 0..<100 {
            let fd = try Socket.listen(on: SocketAddress(parsing: "127.0.0.1:0")!, reusePort: false)
            defer { Syscall.close(fd) }
            guard let port = Socket.localAddress(fd)?.port else { break }
            if taken.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw SocketError("no free port")
    }

    /// Starts the fake DNS and Pebble, validating HTTP-01 at `httpPort` and TLS-ALPN-01 at `tlsPort`. `nonceReject`
    /// is the percentage of good nonces Pebble refuses as bad; `validitySeconds` the lifetime of what it issues.
    public init(httpPort: UInt16, tlsPort: UInt16, nonceReject: Int = 0, validitySeconds: Int? = nil) throws {
        self.httpPort = httpPort
        self.tlsPort = tlsPort
        acmePort = try Self.freePort()
        managementPort = try Self.freePort()
        dnsPort = try Self.freePort()
        directory = FileManager.default.temporaryDirectory.path + "/pebble-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        serverRootFile = directory + "/server-ca.pem"
        logFile = directory + "/pebble.log"
        try DevelopmentCertificate.generate(keyPath: directory + "/server-ca-key.pem", certificatePath: serverRootFile,
                                            commonName: "Pebble server test CA", subjectAltNames: nil, isCA: true)
        try DevelopmentCertificate.generate(keyPath: directory + "/server-key.pem",
                                            certificatePath: directory + "/server-cert.pem", commonName: "localhost",
                                            subjectAltNames: "DNS:localhost,IP:127.0.0.1",
                                            caKeyPath: directory + "/server-ca-key.pem", caCertificatePath: serverRootFile)
        var pebble: [String: Any] = [
            "listenAddress": "127.0.0.1:\(acmePort)",
            "managementListenAddress": "127.0.0.1:\(managementPort)",
            "certificate": directory + "/server-cert.pem",
            "privateKey": directory + "/server-key.pem",
            "httpPort": Int(httpPort),
            "tlsPort": Int(tlsPort),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        ]
        if let validitySeconds { pebble["certificateValidityPeriod"] = validitySeconds }
        let config = try JSONSerialization.data(withJSONObject: ["pebble": pebble])
        try config.write(to: URL(fileURLWithPath: directory + "/pebble.json"))
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)

        try launch("/usr/bin/pebble-challtestsrv",
                   ["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", "127.0.0.1:\(dnsPort)",
                    "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", "127.0.0.1:\(try Self.freePort())"],
                   environment: [:])
        try launch("/usr/bin/pebble", ["-config", directory + "/pebble.json", "-dnsserver", "127.0.0.1:\(dnsPort)"],
                   environment: ["PEBBLE_VA_NOSLEEP": "1", "PEBBLE_VA_ALWAYS_VALID": "0",
                                 "PEBBLE_WFE_NONCEREJECT": String(nonceReject), "PEBBLE_AUTHZREUSE": "0"])
        // Wait for the ACME listener: a process starting up, not time passing.
        for _ in 0..<2000 {
            if Self.canConnect(port: acmePort) && Self.canConnect(port: managementPort) { return }
            guard processes.allSatisfy(\.isRunning) else { break }
            usleep(10_000)
        }
        kill()
        throw SocketError("pebble did not start: \(log)")
    }

    deinit { kill() }

    /// What Pebble printed so far.
    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// The root that signs what Pebble issues, as PEM, from its management interface (a new one each launch).
    public func issuingRoot() throws -> [UInt8] {
        let tls = try TLSClient(extraRootFile: serverRootFile)
        let stream = try tls.connect(host: "127.0.0.1", port: managementPort, timeoutMillis: 10_000)
        defer { stream.close() }
        try stream.write(Array("GET /roots/0 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let n = try stream.read(into: &buffer, at: 0, count: buffer.count)
            if n == 0 { break }
            received += buffer[0..<n]
        }
        guard let start = received.firstRange(of: Array("-----BEGIN".utf8)) else {
            throw SocketError("no root from pebble's management interface")
        }
        return Array(received[start.lowerBound...])
    }

    /// Kills both children and waits for them.
    public func kill() {
        for p in processes where p.isRunning { killAndReap(p) }
        processes = []
    }

    private func launch(_ path: String, _ arguments: [String], environment: [String: String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        processes.append(p)
    }

    private static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Syscall.close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
