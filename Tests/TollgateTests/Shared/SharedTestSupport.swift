import Foundation
import Glibc
import Synchronization
@testable import Tollgate
import TollgateIO
import Testing

/// A `redis-server` child on 127.0.0.1 at a free port, without persistence; `stop` and `start` again keep the port.
final class RedisServerProcess: @unchecked Sendable {
    /// The redis-server binary on PATH, or nil (the suites are then skipped with a message).
    static let binary: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
            let candidate = "\(dir)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    static var available: Bool { binary != nil }

    let port: UInt16
    let password: String?
    private var process: Process?

    /// Starts a server; throws if it does not accept connections within 20 s.
    init(password: String? = nil) throws {
        port = try RedisServerProcess.freePort()
        self.password = password
        try start()
    }

    deinit { stop() }

    /// `redis://[:password@]127.0.0.1:<port>[/db]`
    func url(database: Int = 0, password: String? = nil) -> String {
        let pw = password ?? self.password
        return "redis://\(pw.map { ":\($0)@" } ?? "")127.0.0.1:\(port)\(database == 0 ? "" : "/\(database)")"
    }

    func start() throws {
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
            if RedisServerProcess.canConnect(port: port) { return }
            usleep(10_000)
        }
        throw SocketError("redis-server did not start on port \(port)")
    }

    /// Kills the server (a crash, as far as clients can tell) and waits for it to exit, so its port is free again.
    /// SIGKILL because the child inherits the test thread's signal mask, in which SIGTERM may be blocked.
    func stop() {
        guard let p = process else { return }
        process = nil
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    private static func freePort() throws -> UInt16 {
        let fd = try Socket.listen(on: SocketAddress(parsing: "127.0.0.1:0")!, reusePort: false)
        defer { Syscall.close(fd) }
        guard let port = Socket.localAddress(fd)?.port else { throw SocketError("no port") }
        return port
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

/// An `EventLoop` running on its own thread, with helpers to run code on it and wait for callbacks.
final class TestLoop: @unchecked Sendable {
    let loop: EventLoop
    private let thread: pthread_t
    private var stopped = false

    init(tickMillis: UInt64 = 20) throws {
        let loop = try EventLoop(index: 0, tickMillis: tickMillis)
        self.loop = loop
        thread = spawnThread(name: "redis-test") { loop.run() }
    }

    /// Stops the loop and joins its thread.
    func stop() {
        guard !stopped else { return }
        stopped = true
        loop.execute { [loop] in loop.stop() }
        pthread_join(thread, nil)
    }

    deinit { stop() }

    /// Runs body on the loop thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in loop.execute { c.resume(returning: body()) } }
    }

    /// Runs body on the loop thread and waits until it calls its callback; nil after 60 s (a hung test fails
    /// instead of hanging).
    func call<T: Sendable>(_ body: @escaping @Sendable (@escaping @Sendable (T) -> Void) -> Void) async -> T? {
        let once = Mutex<CheckedContinuation<T?, Never>?>(nil)
        return await withCheckedContinuation { (c: CheckedContinuation<T?, Never>) in
            once.withLock { $0 = c }
            let resume: @Sendable (T?) -> Void = { value in
                once.withLock { slot in
                    slot?.resume(returning: value)
                    slot = nil
                }
            }
            Task {
                try? await Task.sleep(for: .seconds(60))
                resume(nil)
            }
            loop.execute { body { resume($0) } }
        }
    }

    /// Polls `condition` on the loop thread until it holds (true) or 30 s pass (false).
    func waitUntil(_ condition: @escaping @Sendable () -> Bool) async -> Bool {
        for _ in 0..<3000 {
            if await run(condition) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}

/// A client on `loop` for `url`, started unless told otherwise; close it with `closeClient` before stopping the loop.
func makeClient(_ url: String, on loop: TestLoop, commandTimeoutMillis: UInt64 = 5_000,
                backoffMillis: UInt64 = 20, start: Bool = true) async throws -> RedisClient {
    var config = try #require(RedisConfiguration(url: url))
    config.commandTimeoutMillis = commandTimeoutMillis
    config.initialBackoffMillis = backoffMillis
    config.maxBackoffMillis = backoffMillis * 4
    let address = try config.resolve()
    let client = RedisClient(configuration: config, address: address, loop: loop.loop)
    if start { await loop.run { client.start() } }
    return client
}

/// Closes the client on its loop.
func closeClient(_ client: RedisClient, on loop: TestLoop) async {
    await loop.run { client.close() }
}

/// Sends one command and waits for its outcome.
func command(_ client: RedisClient, on loop: TestLoop, _ args: String...) async -> Result<RESPValue, RedisError>? {
    await loop.call { done in client.send(args) { done($0) } }
}

/// A bulk-string reply for `text`.
func bulk(_ text: String) -> RESPValue { .bulkString(Array(text.utf8)) }
