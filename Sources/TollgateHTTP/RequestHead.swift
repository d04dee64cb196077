/// A parsed request head: ranges into the caller's buffer plus what the parser decided about framing.
///
/// Keep one per connection and pass it to every `RequestParser.parse` call: the parser resets it but keeps the
/// capacity of `headers`, so steady-state parsing allocates nothing.
public struct RequestHead: Sendable {
    /// The method, recognised case-sensitively.
    public var method: HTTPMethod
    /// The method token as sent.
    public var methodRange: Range<Int>
    /// The request-target as sent: origin-form "/path?q", absolute-form "http://host/path?q", or "*" (OPTIONS).
    public var target: Range<Int>
    /// The target without the query. For absolute-form, just the path part; when that form has no path, this is
    /// the range of one "/" byte inside the target's "//", so it always reads as a path starting with "/".
    public var path: Range<Int>
    /// The protocol version.
    public var version: HTTPVersion
    /// All header fields in order, including the ones the parser interpreted.
    public var headers: [HeaderField]
    /// How the body is delimited: `.none`, `.contentLength(n)` (n may be 0) or `.chunked`.
    public var framing: BodyFraming
    /// Whether the connection may stay open after this exchange: HTTP/1.1 unless "Connection: close";
    /// HTTP/1.0 only with "Connection: keep-alive".
    public var keepAlive: Bool
    /// True for "Expect: 100-continue" (case-insensitive) in an HTTP/1.1 request; other expectations are ignored.
    public var expectContinue: Bool
    /// The value of the single Host field, if any (required and non-empty for HTTP/1.1).
    public var host: Range<Int>?
    /// Bytes from `start` through the final CRLF CRLF, including skipped leading empty lines; the body or the
    /// next pipelined request starts at `start + headLength`.
    public var headLength: Int

    /// An empty head with room for 32 header fields.
    public init() {
        method = .other
        methodRange = 0..<0
        target = 0..<0
        path = 0..<0
        version = .http11
        headers = []
        headers.reserveCapacity(32)
        framing = .none
        keepAlive = false
        expectContinue = false
        host = nil
        headLength = 0
    }

    /// Clears every field, keeping the capacity of `headers`.
    mutating func reset() {
        method = .other
        methodRange = 0..<0
        target = 0..<0
        path = 0..<0
        version = .http11
        headers.removeAll(keepingCapacity: true)
        framing = .none
        keepAlive = false
        expectContinue = false
        host = nil
        headLength = 0
    }
}
