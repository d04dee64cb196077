import Foundation
import Glibc
import Synchronization
import TollgateIO

/// A `redis-server` child on 127.0.0.1 at a free port, without persistence, for the tests of the shared limits
/// (TollgateTests and EndToEndTests); `kill` and `start` again keep the port (a Redis crash and its restart, as
/// Tollgate sees them).
public final class RedisServerProcess: @unchecked Sendable {
    /// The redis-server binary on PATH, or nil (the suites are then skipped with a message).
    public static let binary: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
            let candidate = "\(dir)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    /// Whether redis-server is installed.
    public static var available: Bool { binary != nil }

    /// The port it listens on, the same after a restart.
    public let port: UInt16
    /// The `requirepass` password, if any.
    public let password: String?
    private var process: Process?

    /// Ports handed out in this test process: the kernel may offer a just-closed port again before its
    /// redis-server has bound it, and two parallel tests must never share one server.
    private static let taken = Mutex<Set<UInt16>>([])

    /// Starts a server (requiring `password` if given); throws if it does not accept connections within 20 s.
    public init(password: String? = nil) throws {
        var chosen: UInt16?
        for _ in 0..<100 where chosen == nil {
            let fd = try Socket.listen(on: SocketAddress(parsing: "127.0.0.1:0")!, reusePort: false)
            defer { Syscall.close(fd) }
            guard let port = Socket.localAddress(fd)?.port else { throw SocketError("no free port") }
            if RedisServerProcess.taken.withLock({ $0.insert(port).inserted }) { chosen = port }
        }
        guard let chosen else { throw SocketError("no free port") }
        port = chosen
        self.password = password
        try start()
    }

    deinit { kill() }

    /// `redis://[:password@]127.0.0.1:<port>[/db]`, with the server's own password unless given another.
    public func url(database: Int = 0, password: String? = nil) -> String {
        let pw = password ?? self.password
        return "redis://\(pw.map { ":\($0)@" } ?? "")127.0.0.1:\(port)\(database == 0 ? "" : "/\(database)")"
    }

    /// Starts the server (again) on `port`; throws if it does not accept connections within 20 s.
    public func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: RedisServerProcess.binary!)
        var args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning"]
        if let password { args += ["--requirepass", password] }
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        // Wait for the listener: a process starting up, not time passing.
        for _ in 0..<2000 {
            if RedisServerProcess.canConnect(port: port) {
                // Someone else's listener on our port would accept too; ours must still be running.
                guard p.isRunning else { break }
                return
            }
            if !p.isRunning { break }
            usleep(10_000)
        }
        throw SocketError("redis-server did not start on port \(port)")
    }

    /// Kills the server (a crash, as far as clients can tell) and waits for it to exit, so its port is free again.
    /// SIGKILL because the child inherits the test thread's signal mask, in which SIGTERM may be blocked.
    public func kill() {
        guard let p = process else { return }
        process = nil
        killAndReap(p)
    }

    /// Sends one command over a fresh blocking connection and returns the first line of the reply (`:3`, `+OK`).
    /// Not for a server with a password.
    public func command(_ arguments: String...) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket failed") }
        defer { Syscall.close(fd) }
        guard RedisServerProcess.connect(fd, port: port) else { throw SocketError("cannot connect to redis on \(port)") }
        var request = "*\(arguments.count)\r\n"
        for a in arguments { request += "$\(a.utf8.count)\r\n\(a)\r\n" }
        let bytes = Array(request.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw SocketError("short write") }
        var reply: [UInt8] = []
        var byte: UInt8 = 0
        while Glibc.read(fd, &byte, 1) == 1 {
            if byte == 0x0A { break }
            if byte != 0x0D { reply.append(byte) }
        }
        return String(decoding: reply, as: UTF8.self)
    }

    private static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Syscall.close(fd) }
        return connect(fd, port: port)
    }

    /// A blocking connect of `fd` to 127.0.0.1:`port`.
    private static func connect(_ fd: Int32, port: UInt16) -> Bool {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
