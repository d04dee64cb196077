/// Byte constants and character classes of the HTTP grammar (RFC 9110 5.6, RFC 9112).
enum ASCII {
    /// Carriage return.
    static let cr: UInt8 = 0x0D
    /// Line feed.
    static let lf: UInt8 = 0x0A
    /// Space.
    static let sp: UInt8 = 0x20
    /// Horizontal tab.
    static let htab: UInt8 = 0x09
    /// ":"
    static let colon: UInt8 = 0x3A
    /// ";"
    static let semicolon: UInt8 = 0x3B
    /// "="
    static let equals: UInt8 = 0x3D
    /// ","
    static let comma: UInt8 = 0x2C
    /// "/"
    static let slash: UInt8 = 0x2F
    /// "?"
    static let question: UInt8 = 0x3F
    /// "@"
    static let at: UInt8 = 0x40
    /// "*"
    static let star: UInt8 = 0x2A
    /// Double quote.
    static let quote: UInt8 = 0x22
    /// "\\"
    static let backslash: UInt8 = 0x5C
    /// "0"
    static let zero: UInt8 = 0x30
    /// `#`
    static let hash: UInt8 = 0x23
    /// `%`
    static let percent: UInt8 = 0x25

    /// True for RFC 9110 `tchar`: ALPHA, DIGIT and ``!#$%&'*+-.^_`|~``.
    @inline(__always)
    static func isTchar(_ b: UInt8) -> Bool {
        // One bit per byte value below 128 (bits 0-63, then 64-127): a shift and a test instead of range compares.
        if b < 64 { return (tcharLow >> UInt64(b)) & 1 != 0 }
        if b < 128 { return (tcharHigh >> UInt64(b &- 64)) & 1 != 0 }
        return false
    }

    /// `tchar` bits for bytes 0-63: `!#$%&'*+-.` and DIGIT.
    static let tcharLow: UInt64 = 0x03FF_6CFA_0000_0000
    /// `tchar` bits for bytes 64-127: ALPHA and ``^_`|~``.
    static let tcharHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    /// True for bytes allowed inside a field value: HTAB, SP, VCHAR and obs-text.
    @inline(__always)
    static func isFieldValueByte(_ b: UInt8) -> Bool {
        b == htab || (b >= sp && b != 0x7F)
    }

    /// True for SP or HTAB (optional whitespace).
    @inline(__always)
    static func isOWS(_ b: UInt8) -> Bool {
        b == sp || b == htab
    }

    /// The value of a hex digit, or nil.
    @inline(__always)
    static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: return Int(b &- 0x30)
        case 0x41...0x46: return Int(b &- 0x41 &+ 10)
        case 0x61...0x66: return Int(b &- 0x61 &+ 10)
        default: return nil
        }
    }

    /// True for 0-9.
    @inline(__always)
    static func isDigit(_ b: UInt8) -> Bool {
        b >= 0x30 && b <= 0x39
    }

    /// ASCII lowercase of `b`; other bytes unchanged.
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 {
        b >= 0x41 && b <= 0x5A ? b | 0x20 : b
    }
}
