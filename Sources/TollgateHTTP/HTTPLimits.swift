/// Size limits a parser enforces on a head; exceeding one is refused before the rest arrives.
public struct HTTPLimits: Sendable {
    /// Longest request line (or status line) accepted, without its CRLF; longer is refused with 414.
    public var maxRequestLine: Int
    /// Most header fields accepted; more is refused with 431.
    public var maxHeaderCount: Int
    /// Longest head accepted, from the first byte (including skipped empty lines) through the final CRLF;
    /// longer is refused with 431.
    public var maxHeadBytes: Int

    /// Creates limits; the defaults suit requests from clients.
    public init(maxRequestLine: Int = 8192, maxHeaderCount: Int = 100, maxHeadBytes: Int = 32768) {
        self.maxRequestLine = maxRequestLine
        self.maxHeaderCount = maxHeaderCount
        self.maxHeadBytes = maxHeadBytes
    }
}
