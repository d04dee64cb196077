/// One header field of a parsed head, as ranges into the buffer the parser was given.
///
/// The ranges stay valid only as long as the caller keeps that buffer unchanged.
public struct HeaderField: Sendable, Equatable {
    /// The field name, exactly as sent (case preserved).
    public var name: Range<Int>
    /// The field value with leading and trailing optional whitespace (SP/HTAB) trimmed; may be empty.
    public var value: Range<Int>
    /// What the name means to the proxy.
    public var kind: HeaderKind

    /// Creates a field from its ranges and kind.
    public init(name: Range<Int>, value: Range<Int>, kind: HeaderKind) {
        self.name = name
        self.value = value
        self.kind = kind
    }
}
