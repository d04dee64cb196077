import Glibc

/// A faithful stand-in for Ollama's HTTP API, for tests, benchmarks and demos.
///
/// Blocking POSIX sockets, one thread per accepted connection, keep-alive HTTP/1.1. `init` binds and listens,
/// `start` runs the accept loop on a background thread, `stop` shuts every socket down and waits for the threads.
/// All members are thread-safe.
public final class FakeOllamaServer: @unchecked Sendable {
    /// One request as it reached the server (body de-chunked).
    public struct RecordedRequest: Sendable {
        public var method: String
        public var target: String
        public var version: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        /// The first value of header `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            let lower = name.lowercased()
            return headers.first { $0.name.lowercased() == lower }?.value
        }
    }

    /// Misbehaviour to inject.
    public enum Fault: Sendable, Equatable {
        /// Behave.
        case none
        /// Every streamed response sends its head and K lines, then the socket is closed without the terminating
        /// zero chunk (K at or past the end: all lines, still no zero chunk). Non-streamed replies are unaffected.
        case dieAfterLines(Int)
        /// Read each request, then hold the connection silently until the client leaves or `stop()`.
        case hang
        /// Stop listening (new connections are refused); setting any other fault listens again on the same port.
        case refuse
        /// Read each request, then close the connection without a byte of answer (a backend that dies on it).
        case closeWithoutAnswer
    }

    let config: FakeOllamaConfig
    let isLoopback: Bool
    let lock = Lock()
    let boundPort: UInt16

    // Guarded by `lock` (internal so the +Internals extension can reach them).
    var listenFD: Int32
    var acceptThread: pthread_t?
    var started = false
    var stopping = false
    var recorded: [RecordedRequest] = []
    var requestCount = 0
    var cancelCount = 0
    var connections: [Int: ConnectionEntry] = [:]
    var nextConnectionID = 0
    var stepModeOn = false
    var granted = 0
    var consumed = 0
    var currentFault = Fault.none

    /// What `stop()` and `allowLines` need to reach a connection thread.
    struct ConnectionEntry {
        var fd: Int32
        var wakeFD: Int32 = -1
    }

    /// Binds and listens on `config.host:config.port`; throws `FakeOllamaError.cannotListen` if the port is taken.
    public init(config: FakeOllamaConfig) throws {
        self.config = config
        let (fd, port) = try Sock.listen(host: config.host, port: config.port)
        listenFD = fd
        boundPort = port
        isLoopback = HostCheck.isLoopbackListenHost(config.host)
    }

    deinit {
        stop()
    }

    /// The port actually bound (the chosen one when the config said 0).
    public var port: UInt16 { boundPort }

    /// Starts the accept loop on a background thread. Calling it twice does nothing.
    public func start() {
        lock.withLock {
            guard !started, !stopping else { return }
            started = true
            startAcceptLoopLocked()
        }
    }

    /// Stops listening, shuts down every open connection and waits (up to 5 s) for their threads to finish.
    /// Returns promptly: `shutdown(2)` wakes threads blocked in accept, recv and poll. Idempotent.
    public func stop() {
        let (thread, fd): (pthread_t?, Int32) = lock.withLock {
            if stopping { return (nil, -1) }
            stopping = true
            let t = acceptThread
            acceptThread = nil
            let fd = listenFD
            listenFD = -1
            // A plain close() does not wake a thread blocked in accept() on Linux; shutdown() does.
            if fd >= 0 { Sock.shutdownBoth(fd) }
            for entry in connections.values {
                Sock.shutdownBoth(entry.fd)
                if entry.wakeFD >= 0 { Wake.signal(entry.wakeFD) }
            }
            lock.broadcast()
            return (t, fd)
        }
        if let thread { pthread_join(thread, nil) }
        if fd >= 0 { Sock.close(fd) }
        _ = lock.wait(until: Clock.deadline(afterSeconds: 5)) { connections.isEmpty }
    }

    // MARK: Test hooks

    /// Every request received so far, in arrival order (empty when `config.recordRequests` is off).
    public var requests: [RecordedRequest] { lock.withLock { recorded } }

    /// Streams the client abandoned before their last line (closed, half-closed or reset the connection).
    public var cancellations: Int { lock.withLock { cancelCount } }

    /// Connections currently open.
    public var openConnections: Int { lock.withLock { connections.count } }

    /// Step mode: when on, every streamed line (token lines and the final line alike) waits for a grant from
    /// `allowLines`; grants are shared by all streams, first come first served. The interval is not applied.
    public var stepMode: Bool {
        get { lock.withLock { stepModeOn } }
        set {
            lock.withLock {
                stepModeOn = newValue
                wakeAllLocked()
            }
        }
    }

    /// Grants `n` more streamed lines in step mode.
    public func allowLines(_ n: Int) {
        lock.withLock {
            granted += n
            wakeAllLocked()
        }
    }

    /// The fault applied to requests that arrive from now on (a stream in progress keeps the one it started with).
    public var fault: Fault {
        get { lock.withLock { currentFault } }
        set { setFault(newValue) }
    }

    /// Blocks until `cancellations >= n` or `timeoutSeconds` pass; returns whether the count was reached.
    public func waitForCancellations(_ n: Int, timeoutSeconds: Double) -> Bool {
        lock.wait(until: Clock.deadline(afterSeconds: timeoutSeconds)) { cancelCount >= n }
    }

    /// Blocks until at least `n` requests have arrived or `timeoutSeconds` pass; returns whether they did.
    public func waitForRequests(_ n: Int, timeoutSeconds: Double) -> Bool {
        lock.wait(until: Clock.deadline(afterSeconds: timeoutSeconds)) { requestCount >= n }
    }

    /// Blocks until `openConnections == n` or `timeoutSeconds` pass; returns whether it did.
    public func waitForOpenConnections(_ n: Int, timeoutSeconds: Double) -> Bool {
        lock.wait(until: Clock.deadline(afterSeconds: timeoutSeconds)) { connections.count == n }
    }
}
