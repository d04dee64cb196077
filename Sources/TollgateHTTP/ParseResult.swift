/// Outcome of parsing a head from a buffer.
public enum ParseResult: Sendable, Equatable {
    /// The head is complete and valid; it was written to the `head` argument.
    case complete
    /// The head is valid so far but incomplete; call again with more bytes (from the same start).
    case needMore
    /// The head is refused; answer with the error's status and close the connection.
    case invalid(HTTPParseError)
}
