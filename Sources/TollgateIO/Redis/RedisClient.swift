/// A non-blocking RESP2 client on one `EventLoop`: one connection, commands pipelined, replies matched in order.
///
/// Loop thread only, every method and callback (hop in with `EventLoop.execute`); marked `Sendable` only so it can
/// be captured in such hops. The client owns its socket as the loop's `EventHandler` and closes it itself.
///
/// - Replies are matched to commands by a FIFO; completions run on the loop thread, in command order.
/// - Each connection starts with `AUTH` and `SELECT` (when configured) and `SCRIPT LOAD` of every script passed to
///   `evalScript` so far, pipelined ahead of the commands queued meanwhile.
/// - A command without a reply after `commandTimeoutMillis` closes the connection and fails every pending command
///   with `.timeout`: a late reply can never be read as a later command's.
/// - A lost connection is retried after a backoff that doubles up to `maxBackoffMillis`. While it is down, commands
///   fail at once with `.notConnected` (callers fall back rather than queue behind an outage).
/// - Never call `send` before `start`; after `close`, everything fails with `.closed`.
public final class RedisClient: EventHandler, @unchecked Sendable {
    /// Called with the reply, a Redis error reply included (`.success(.error(...))`), or why there is none.
    public typealias Completion = (Result<RESPValue, RedisError>) -> Void

    enum State {
        /// Not started yet.
        case idle
        /// A non-blocking connect is under way on `fd`.
        case connecting
        /// Connected; `setupRemaining` setup replies still to come.
        case connected
        /// Waiting to reconnect.
        case backingOff
        /// Closed for good.
        case closed
    }

    enum Purpose {
        /// A caller's command.
        case user(Completion?)
        /// `AUTH` or `SELECT`: an error reply fails the connection.
        case setup
        /// `SCRIPT LOAD` on connect: the reply only warms the cache.
        case scriptLoad
        /// `EVALSHA` that falls back to `EVAL` on `NOSCRIPT`.
        case evalSHA(RedisScript, keys: [[UInt8]], args: [[UInt8]], Completion?)
    }

    struct Pending {
        var purpose: Purpose
        /// Monotonic nanoseconds after which the command has timed out.
        var deadline: UInt64
    }

    /// The loop this client lives on.
    public let loop: EventLoop
    /// The settings this client was made with.
    public let configuration: RedisConfiguration
    let address: SocketAddress
    let parser: RESPParser

    var state: State = .idle
    var fd: Int32 = -1
    /// Bumped on every close, so work for an old connection notices it is stale.
    var generation: UInt64 = 0
    var setupRemaining = 0
    var connectDeadline: UInt64 = 0
    var backoffMillis: UInt64
    var pending: [Pending] = []
    var pendingHead = 0
    var output: [UInt8] = []
    var outputOffset = 0
    var flushScheduled = false
    var input: [UInt8]
    var inputStart = 0
    var inputEnd = 0
    var scripts: [RedisScript] = []

    /// The current health; see `onHealthChange`.
    public internal(set) var health: RedisHealth = .connecting
    /// Why the last connection failed or was lost (for the log line of a fallback); nil before any failure.
    public internal(set) var lastError: RedisError?
    /// Running totals for metrics.
    public internal(set) var counters = RedisCounters()
    /// Called on the loop thread whenever `health` changes (log the fallback once, and its end).
    public var onHealthChange: ((RedisHealth) -> Void)?

    /// A client for `address` (from `configuration.resolve()`) on `loop`. Does nothing until `start`.
    public init(configuration: RedisConfiguration, address: SocketAddress, loop: EventLoop, parser: RESPParser = RESPParser()) {
        self.configuration = configuration
        self.address = address
        self.loop = loop
        self.parser = parser
        backoffMillis = max(1, configuration.initialBackoffMillis)
        input = [UInt8](repeating: 0, count: 16 * 1024)
    }

    deinit {
        assert(fd < 0, "RedisClient dropped with its socket open; call close() first")
    }

    /// Starts connecting. Loop thread only.
    public func start() {
        guard case .idle = state else { return }
        connect()
    }

    /// Closes the connection for good and fails every pending command with `.closed`. Loop thread only.
    public func close() {
        if case .closed = state { return }
        teardown(failing: .closed, next: .closed)
    }

    /// Commands sent and not yet answered.
    public var pendingCount: Int { pending.count - pendingHead }

    /// Sends one command (`["SET", "k", "v"]` as bytes); `completion` runs on the loop thread with its reply.
    public func send(_ arguments: [[UInt8]], completion: Completion?) {
        enqueue(arguments, purpose: .user(completion))
    }

    /// Sends one command given as strings.
    public func send(_ arguments: [String], completion: Completion?) {
        send(arguments.map { Array($0.utf8) }, completion: completion)
    }

    /// Runs `script` with `EVALSHA`; on `NOSCRIPT` (the server lost its script cache) runs it once with `EVAL`, which
    /// also reloads it, so the next call is an `EVALSHA` again. The script is loaded on every new connection too.
    public func evalScript(_ script: RedisScript, keys: [[UInt8]], args: [[UInt8]], completion: Completion?) {
        if !scripts.contains(script) {
            scripts.append(script)
            if case .connected = state { enqueue([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.source.utf8)], purpose: .scriptLoad) }
        }
        enqueue(RedisClient.evalArguments(Array("EVALSHA".utf8), Array(script.sha1.utf8), keys: keys, args: args),
                purpose: .evalSHA(script, keys: keys, args: args, completion))
    }

    static func evalArguments(_ verb: [UInt8], _ body: [UInt8], keys: [[UInt8]], args: [[UInt8]]) -> [[UInt8]] {
        var a: [[UInt8]] = [verb, body, Array(String(keys.count).utf8)]
        a.reserveCapacity(3 + keys.count + args.count)
        a.append(contentsOf: keys)
        a.append(contentsOf: args)
        return a
    }

    // MARK: EventHandler

    /// The connect deadline while connecting, else the oldest pending command's deadline, else 0.
    public var deadline: UInt64 {
        switch state {
        case .connecting: return connectDeadline
        case .connected: return pendingHead < pending.count ? pending[pendingHead].deadline : 0
        default: return 0
        }
    }

    /// A connect or command timed out: close, fail everything pending, reconnect later.
    public func deadlineExpired(now: UInt64) {
        switch state {
        case .connecting:
            counters.timeouts += 1
            fail(.timeout)
        case .connected:
            guard pendingHead < pending.count, pending[pendingHead].deadline <= now else { return }
            counters.timeouts += 1
            fail(.timeout)
        default:
            return
        }
    }

    /// Socket readiness.
    public func ready(_ events: ReadyEvents) {
        let gen = generation
        if case .connecting = state {
            guard !events.isDisjoint(with: [.writable, .error, .peerClosed]) else { return }
            let e = Syscall.socketError(fd)
            guard e == 0 else { fail(.connectionLost(e)); return }
            connected()
            guard gen == generation else { return }
        }
        guard case .connected = state else { return }
        if events.contains(.writable) {
            flush()
            guard gen == generation else { return }
        }
        if !events.isDisjoint(with: [.readable, .peerClosed, .error]) {
            readReplies()
        }
    }
}
