/// One RESP2 reply value.
///
/// Simple strings and errors are kept as text (Redis writes them in ASCII); bulk strings are raw bytes. RESP2 has two
/// nulls, the null bulk string (`$-1`) and the null array (`*-1`); they stay distinct.
public enum RESPValue: Sendable, Equatable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR message`: the whole line after `-`, including the error code.
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$3\r\nfoo`, or nil for `$-1`.
    case bulkString([UInt8]?)
    /// `*2\r\n...`, or nil for `*-1`.
    case array([RESPValue]?)

    /// The integer of an `.integer`, or nil.
    public var int: Int64? {
        if case .integer(let v) = self { return v }
        return nil
    }

    /// The text of a simple or bulk string, or nil.
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bulkString(let b?): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }

    /// The elements of a non-null array, or nil.
    public var elements: [RESPValue]? {
        if case .array(let a?) = self { return a }
        return nil
    }

    /// The message of an `.error`, or nil.
    public var errorMessage: String? {
        if case .error(let e) = self { return e }
        return nil
    }
}
