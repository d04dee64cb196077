/// Why a message was refused: the status to answer with and a short reason safe to show a client.
///
/// Request errors carry 400, 414, 431, 501 or 505. Response errors (a broken upstream) carry 502.
/// The connection must be closed after any of them: the framing of what follows is unknown.
public struct HTTPParseError: Error, Sendable, Equatable {
    /// The HTTP status to answer with.
    public var status: Int
    /// A short human reason, e.g. "Content-Length and Transfer-Encoding together".
    public var reason: String

    /// Creates an error with a status and a reason.
    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }
}
