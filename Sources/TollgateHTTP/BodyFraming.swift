/// How the body of a message is delimited (RFC 9112 6.3).
public enum BodyFraming: Sendable, Equatable {
    /// No body follows the head.
    case none
    /// Exactly this many body bytes follow (may be 0).
    case contentLength(Int)
    /// A chunked body follows; decode it with `ChunkedDecoder`.
    case chunked
    /// The body runs until the sender closes the connection. Responses only.
    case untilClose
}
