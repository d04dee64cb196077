/// Why a connection or an exchange ended: one stable set of codes for logs and metrics alike (HAProxy's
/// termination codes).
public enum CloseReason: String, Sendable, Error {
    case completed = "done"
    case clientClosed = "client-closed"
    case clientAborted = "client-aborted"
    case clientError = "client-error"
    case tlsHandshakeFailed = "tls-failed"
    case headTimeout = "head-timeout"
    case keepAliveTimeout = "idle-timeout"
    case bodyTimeout = "body-timeout"
    case sendTimeout = "send-timeout"
    case badRequest = "bad-request"
    case upstreamRefused = "upstream-refused"
    case upstreamTimeout = "upstream-timeout"
    case upstreamClosed = "upstream-closed"
    case upstreamInvalid = "upstream-invalid"
    case draining = "draining"
    case rejected = "rejected"
    case rateLimited = "rate-limited"
    /// Closed at accept (or at its PROXY protocol header): `max-connections` or `max-connections-per-client`.
    case connectionLimit = "connection-limit"
}
