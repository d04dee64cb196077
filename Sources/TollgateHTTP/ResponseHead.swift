/// A parsed response head from the upstream: ranges into the caller's buffer plus the body framing.
///
/// Keep one per upstream connection and reuse it; the parser resets it but keeps the capacity of `headers`.
public struct ResponseHead: Sendable {
    /// The status code, 100...599.
    public var status: Int
    /// The protocol version.
    public var version: HTTPVersion
    /// The reason phrase as sent; may be empty.
    public var reason: Range<Int>
    /// All header fields in order.
    public var headers: [HeaderField]
    /// `.none` for 1xx/204/304 and for responses to HEAD; `.chunked` when Transfer-Encoding ends in chunked;
    /// `.contentLength(n)`; otherwise `.untilClose`.
    public var framing: BodyFraming
    /// Whether the upstream connection may be reused after this response's body. Always false for `.untilClose`,
    /// for "Connection: close", for HTTP/1.0 without "Connection: keep-alive", and when both Content-Length and
    /// Transfer-Encoding were sent (RFC 9112 6.3 item 3: drop the Content-Length when forwarding).
    public var keepAlive: Bool
    /// Bytes from `start` through the final CRLF CRLF.
    public var headLength: Int

    /// An empty head with room for 32 header fields.
    public init() {
        status = 0
        version = .http11
        reason = 0..<0
        headers = []
        headers.reserveCapacity(32)
        framing = .none
        keepAlive = false
        headLength = 0
    }

    /// Clears every field, keeping the capacity of `headers`.
    mutating func reset() {
        status = 0
        version = .http11
        reason = 0..<0
        headers.removeAll(keepingCapacity: true)
        framing = .none
        keepAlive = false
        headLength = 0
    }
}
