/// Why a Redis command did not produce a reply value.
///
/// A Redis error reply (`-ERR ...`) is not one of these: it arrives as `RESPValue.error`, since the connection is
/// still fine. Each case here means the command's fate is unknown or it was never sent, so callers treat them all
/// as "Redis unavailable" and fall back.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not connected (backing off between attempts, or closed); the command was not sent.
    case notConnected
    /// No reply within the command timeout; the connection was closed and every pending command failed.
    case timeout
    /// The connection failed or the server closed it with this command pending (errno, or 0 for EOF).
    case connectionLost(Int32)
    /// The server sent bytes that are not RESP2; the connection was closed.
    case protocolViolation(String)
    /// The connection's `AUTH` or `SELECT` was refused; the server's message.
    case setupRefused(String)
    /// `maxPending` commands already wait for replies; this one was not sent.
    case backlogFull
    /// The client was closed for good.
    case closed

    public var description: String {
        switch self {
        case .notConnected: return "not connected"
        case .timeout: return "timed out"
        case .connectionLost(let e): return e == 0 ? "connection closed by server" : "connection lost: \(Syscall.describe(e))"
        case .protocolViolation(let why): return "protocol violation: \(why)"
        case .setupRefused(let why): return "connection setup refused: \(why)"
        case .backlogFull: return "too many commands pending"
        case .closed: return "client closed"
        }
    }
}
