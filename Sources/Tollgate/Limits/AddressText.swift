/// Parses numeric IP addresses from bytes (header values, PROXY lines, config) without allocating.
///
/// Strict: IPv4 is four decimal octets without leading zeros (no octal, no shorthand); IPv6 is RFC 4291 text with
/// at most one `::` and an optional trailing dotted IPv4; no zone ids. IPv4-mapped IPv6 comes back as IPv4.
enum AddressText {
    /// An IPv4 address in host byte order, or nil.
    static func parseV4(_ b: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for c in b {
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                if digits > 0 && octet == 0 { return nil }  // leading zero
                octet = octet * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                if digits > 3 || octet > 255 { return nil }
            } else if c == UInt8(ascii: ".") {
                if digits == 0 || dots == 3 { return nil }
                value = value << 8 | octet
                octet = 0
                digits = 0
                dots += 1
            } else {
                return nil
            }
        }
        if digits == 0 || dots != 3 { return nil }
        return value << 8 | octet
    }

    /// An IPv6 address, or nil.
    static func parseV6(_ b: ArraySlice<UInt8>) -> AddressBits? {
        var groups = SIMD8<UInt16>()
        var count = 0
        var gap = -1
        var i = b.startIndex
        let end = b.endIndex
        if i == end { return nil }
        if b[i] == UInt8(ascii: ":") {
            guard b.index(after: i) < end, b[b.index(after: i)] == UInt8(ascii: ":") else { return nil }
            gap = 0
            i += 2
        }
        while i < end {
            let groupStart = i
            var value: UInt32 = 0
            var digits = 0
            while i < end, let h = hexValue(b[i]) {
                value = value << 4 | UInt32(h)
                digits += 1
                i += 1
                if digits > 4 { return nil }
            }
            if i < end && b[i] == UInt8(ascii: ".") {
                // Trailing dotted IPv4 fills the last two groups.
                guard count <= 6, let v4 = parseV4(b[groupStart..<end]) else { return nil }
                groups[count] = UInt16(truncatingIfNeeded: v4 >> 16)
                groups[count + 1] = UInt16(truncatingIfNeeded: v4)
                count += 2
                i = end
                break
            }
            if digits == 0 || count == 8 { return nil }
            groups[count] = UInt16(value)
            count += 1
            if i == end { break }
            guard b[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            if i == end { return nil }  // trailing single colon
            if b[i] == UInt8(ascii: ":") {
                if gap >= 0 { return nil }
                gap = count
                i += 1
            }
        }
        if gap < 0 {
            if count != 8 { return nil }
        } else {
            if count > 7 { return nil }
            let moved = count - gap
            var expanded = SIMD8<UInt16>()
            for k in 0..<gap { expanded[k] = groups[k] }
            for k in 0..<moved { expanded[8 - moved + k] = groups[gap + k] }
            groups = expanded
        }
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for k in 0..<4 { hi = hi << 16 | UInt64(groups[k]) }
        for k in 4..<8 { lo = lo << 16 | UInt64(groups[k]) }
        return AddressBits(hi: hi, lo: lo)
    }

    /// An IPv4 or IPv6 address, or nil.
    static func parse(_ b: ArraySlice<UInt8>) -> AddressBits? {
        if let v4 = parseV4(b) { return AddressBits(v4HostOrder: v4) }
        return parseV6(b)
    }

    /// One `X-Forwarded-For` element, trimmed of spaces and tabs: an address, `a.b.c.d:port`, `[v6]` or `[v6]:port`.
    static func parseForwardedElement(_ raw: ArraySlice<UInt8>) -> AddressBits? {
        var lo = raw.startIndex
        var hi = raw.endIndex
        while lo < hi && (raw[lo] == 0x20 || raw[lo] == 0x09) { lo += 1 }
        while hi > lo && (raw[hi - 1] == 0x20 || raw[hi - 1] == 0x09) { hi -= 1 }
        let b = raw[lo..<hi]
        if b.isEmpty { return nil }
        if b[lo] == UInt8(ascii: "[") {
            guard let close = b.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            let rest = b[(close + 1)...]
            if !rest.isEmpty && !isPort(rest.dropFirst(), colon: rest.first) { return nil }
            return parseV6(b[(lo + 1)..<close])
        }
        if let addr = parse(b) { return addr }
        // a.b.c.d:port
        guard let colon = b.lastIndex(of: UInt8(ascii: ":")), isPort(b[(colon + 1)...], colon: b[colon]),
              let v4 = parseV4(b[lo..<colon]) else { return nil }
        return AddressBits(v4HostOrder: v4)
    }

    /// A decimal port 0...65535 after a colon.
    private static func isPort(_ digits: ArraySlice<UInt8>, colon: UInt8?) -> Bool {
        guard colon == UInt8(ascii: ":") else { return false }
        return parsePort(digits) != nil
    }

    /// A decimal port, 1 to 5 digits, at most 65535.
    static func parsePort(_ b: ArraySlice<UInt8>) -> UInt16? {
        if b.isEmpty || b.count > 5 { return nil }
        var v: UInt32 = 0
        for c in b {
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { return nil }
            v = v * 10 + UInt32(c - UInt8(ascii: "0"))
        }
        return v <= 65535 ? UInt16(v) : nil
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
