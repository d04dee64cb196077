import Glibc

/// A Redis connection for a thread that may block (the key watcher, the command line), never an event loop: one
/// command at a time, each bounded by `timeoutMillis` (connect, write and reply together), over a non-blocking
/// socket waited on with `poll`. Connects on first use (with `AUTH` and `SELECT` as the configuration says) and
/// again after any failure, which closes the connection. Not thread-safe: one thread uses it.
public final class BlockingRedis: @unchecked Sendable {
    private let configuration: RedisConfiguration
    private let address: SocketAddress
    private let timeoutMillis: Int
    private let parser = RESPParser()
    private var fd: Int32 = -1
    private var input: [UInt8] = []

    /// A client for `address` (already resolved); nothing is connected yet.
    public init(configuration: RedisConfiguration, address: SocketAddress, timeoutMillis: Int = 1000) {
        self.configuration = configuration
        self.address = address
        self.timeoutMillis = max(1, timeoutMillis)
    }

    deinit {
        if fd >= 0 { Syscall.close(fd) }
    }

    /// Sends one command and returns its reply (a Redis error reply is a value, `.error`).
    public func command(_ arguments: [String]) throws(RedisError) -> RESPValue {
        let deadline = Syscall.monotonicNanos() &+ UInt64(timeoutMillis) * 1_000_000
        do throws(RedisError) {
            if fd < 0 { try connect(deadline) }
            return try roundTrip(arguments.map { Array($0.utf8) }, deadline)
        } catch {
            close()
            throw error
        }
    }

    /// Closes the connection (the next command connects again).
    public func close() {
        if fd >= 0 { Syscall.close(fd) }
        fd = -1
        input.removeAll()
    }

    private func connect(_ deadline: UInt64) throws(RedisError) {
        switch Socket.connect(to: address) {
        case .connected(let s):
            fd = s
        case .inProgress(let s):
            fd = s
            try wait(for: Int16(POLLOUT), deadline)
            let code = Syscall.socketError(fd)
            if code != 0 { throw RedisError.connectionLost(code) }
        case .failed(let e):
            throw RedisError.connectionLost(e)
        }
        if let password = configuration.password {
            var auth = ["AUTH"]
            if let user = configuration.username { auth.append(user) }
            auth.append(password)
            if case .error(let why) = try roundTrip(auth.map { Array($0.utf8) }, deadline) {
                throw RedisError.setupRefused(why)
            }
        }
        if configuration.database != 0,
           case .error(let why) = try roundTrip([Array("SELECT".utf8), Array(String(configuration.database).utf8)], deadline) {
            throw RedisError.setupRefused(why)
        }
    }

    private func roundTrip(_ arguments: [[UInt8]], _ deadline: UInt64) throws(RedisError) -> RESPValue {
        let out = RESPEncoder.encode(arguments)
        var sent = 0
        while sent < out.count {
            switch Syscall.write(fd, out, at: sent, count: out.count - sent) {
            case .bytes(let n): sent += n
            case .wouldBlock: try wait(for: Int16(POLLOUT), deadline)
            case .eof: throw RedisError.connectionLost(0)
            case .failed(let e): throw RedisError.connectionLost(e)
            }
        }
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            switch parser.parse(input) {
            case .complete(let value, let consumed):
                input.removeFirst(consumed)
                return value
            case .invalid(let why):
                throw RedisError.protocolViolation(why)
            case .needMore:
                break
            }
            switch Syscall.read(fd, into: &chunk, at: 0, count: chunk.count) {
            case .bytes(let n): input.append(contentsOf: chunk[0..<n])
            case .wouldBlock: try wait(for: Int16(POLLIN), deadline)
            case .eof: throw RedisError.connectionLost(0)
            case .failed(let e): throw RedisError.connectionLost(e)
            }
        }
    }

    private func wait(for events: Int16, _ deadline: UInt64) throws(RedisError) {
        while true {
            let now = Syscall.monotonicNanos()
            guard now < deadline else { throw RedisError.timeout }
            var p = [pollfd(fd: fd, events: events, revents: 0)]
            let rc = poll(&p, 1, Int32(min((deadline - now + 999_999) / 1_000_000, 60_000)))
            if rc > 0 { return }
            if rc < 0 && errno != EINTR { throw RedisError.connectionLost(errno) }
        }
    }
}
