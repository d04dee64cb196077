/// Writes wire bytes into a caller-owned [UInt8].
///
/// Appends only; the caller owns the buffer and reuses it. Names and values are written as given: callers must
/// pass bytes that are valid in a header (no CR or LF).
public enum HTTPWriter {
    /// "\r\n".
    public static let crlf: [UInt8] = [0x0D, 0x0A]
    /// The last chunk of a chunked body with no trailers: "0\r\n\r\n".
    public static let lastChunk: [UInt8] = [0x30, 0x0D, 0x0A, 0x0D, 0x0A]

    /// Appends a status line such as "HTTP/1.1 200 OK\r\n", with the standard reason phrase.
    public static func appendStatusLine(_ status: Int, version: HTTPVersion = .http11, to out: inout [UInt8]) {
        if status == 200 && version == .http11 {
            appendRaw("HTTP/1.1 200 OK\r\n", to: &out)
            return
        }
        appendRaw(version == .http11 ? "HTTP/1.1 " : "HTTP/1.0 ", to: &out)
        appendDecimal(status, to: &out)
        out.append(ASCII.sp)
        appendRaw(reasonPhrase(status), to: &out)
        out.append(contentsOf: crlf)
    }

    /// Appends "name: value\r\n".
    public static func appendHeader(_ name: StaticString, _ value: String, to out: inout [UInt8]) {
        appendRaw(name, to: &out)
        out.append(ASCII.colon)
        out.append(ASCII.sp)
        appendString(value, to: &out)
        out.append(contentsOf: crlf)
    }

    /// Appends "name: value\r\n" for a name known only at run time (a configured header).
    public static func appendField(_ name: String, _ value: String, to out: inout [UInt8]) {
        appendString(name, to: &out)
        out.append(ASCII.colon)
        out.append(ASCII.sp)
        appendString(value, to: &out)
        out.append(contentsOf: crlf)
    }

    /// Appends "name: value\r\n" with the value taken as bytes (for example a range of a parsed head).
    public static func appendHeader(_ name: StaticString, bytes value: ArraySlice<UInt8>, to out: inout [UInt8]) {
        appendRaw(name, to: &out)
        out.append(ASCII.colon)
        out.append(ASCII.sp)
        out.append(contentsOf: value)
        out.append(contentsOf: crlf)
    }

    /// Appends CRLF.
    public static func appendCRLF(to out: inout [UInt8]) {
        out.append(ASCII.cr)
        out.append(ASCII.lf)
    }

    /// Appends a parsed field as "name: value\r\n" (value trimmed of OWS, as parsed). A line that was sent in
    /// exactly that form, as nearly every client and server sends it, is copied in one piece.
    public static func appendField(_ field: HeaderField, from buffer: [UInt8], to out: inout [UInt8]) {
        let name = field.name, value = field.value
        if value.lowerBound == name.upperBound &+ 2 && buffer[name.upperBound &+ 1] == ASCII.sp
            && value.upperBound < buffer.count && buffer[value.upperBound] == ASCII.cr {
            // name ":" SP value CR, and the scanner saw LF after that CR.
            out.append(contentsOf: buffer[name.lowerBound..<(value.upperBound &+ 2)])
            return
        }
        out.append(contentsOf: buffer[name])
        out.append(ASCII.colon)
        out.append(ASCII.sp)
        out.append(contentsOf: buffer[value])
        appendCRLF(to: &out)
    }

    /// Appends the bytes of a literal unchanged: one copy, no String made or walked.
    public static func appendRaw(_ s: StaticString, to out: inout [UInt8]) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    /// Appends the UTF-8 bytes of `s` unchanged.
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { out.append(contentsOf: $0) }
    }

    /// Appends `n` in decimal ASCII, with a leading "-" when negative; no String is made.
    public static func appendDecimal(_ n: Int, to out: inout [UInt8]) {
        if n >= 0 && n < 10 {
            out.append(ASCII.zero &+ UInt8(truncatingIfNeeded: n))
            return
        }
        if n < 0 { out.append(0x2D) }
        // Work in UInt so Int.min's magnitude fits.
        let magnitude = n.magnitude
        var divisor: UInt = 1
        while magnitude / divisor >= 10 { divisor &*= 10 }
        while divisor > 0 {
            out.append(ASCII.zero &+ UInt8(truncatingIfNeeded: (magnitude / divisor) % 10))
            divisor /= 10
        }
    }

    /// Appends a chunk header: the size in lowercase hex and CRLF, e.g. "1a\r\n". `size` must not be negative;
    /// a size of 0 writes "0\r\n", the start of a last chunk.
    public static func appendChunkHeader(size: Int, to out: inout [UInt8]) {
        precondition(size >= 0, "negative chunk size")
        var shift = 0
        while shift < Int.bitWidth &- 4 && size >> (shift &+ 4) != 0 { shift &+= 4 }
        while shift >= 0 {
            let nibble = UInt8(truncatingIfNeeded: (size >> shift) & 0xF)
            out.append(nibble < 10 ? ASCII.zero &+ nibble : 0x61 &+ nibble &- 10)
            shift &-= 4
        }
        out.append(contentsOf: crlf)
    }
}
