/// Running totals for metrics. Read on the client's loop thread (hop there with `EventLoop.execute`).
public struct RedisCounters: Sendable, Equatable {
    /// Commands written (setup, scripts and fallbacks included).
    public var commands: UInt64 = 0
    /// Replies read, error replies included.
    public var replies: UInt64 = 0
    /// Replies that were Redis errors (`-ERR ...`, `-NOSCRIPT ...`).
    public var errorReplies: UInt64 = 0
    /// Commands failed without a reply (timeout, lost connection, not connected, backlog full, closed).
    public var failedCommands: UInt64 = 0
    /// Connections closed because a command or connect timed out.
    public var timeouts: UInt64 = 0
    /// Connections that completed setup.
    public var connects: UInt64 = 0
    /// Connection attempts that failed before setup completed.
    public var connectFailures: UInt64 = 0
    /// Established connections that were lost (closed by the server, reset, timed out, protocol violation).
    public var disconnects: UInt64 = 0
    /// Malformed replies (each closed the connection).
    public var protocolErrors: UInt64 = 0
    /// `EVALSHA` answered `NOSCRIPT` and was retried once with `EVAL`.
    public var noscriptFallbacks: UInt64 = 0

    /// All zero.
    public init() {}
}
