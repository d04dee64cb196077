/// base64url without padding (RFC 4648 section 5, RFC 7515 section 2): how JWS and ACME write bytes.
enum Base64URL {
    /// Encodes `bytes`: `-` and `_` for `+` and `/`, no `=`.
    static func encode<C: Collection<UInt8>>(_ bytes: C) -> String {
        var out = ""
        for c in Base64.encode(bytes).unicodeScalars {
            switch c {
            case "+": out += "-"
            case "/": out += "_"
            case "=": break
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Whether `byte` is one of base64url's 64 letters.
    static func isAlphabet(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// Decodes unpadded base64url; nil for anything else.
    static func decode(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "-"): bytes.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): bytes.append(UInt8(ascii: "/"))
            case UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="): return nil
            default: bytes.append(b)
            }
        }
        guard bytes.count % 4 != 1 else { return nil }
        bytes += Array(repeating: UInt8(ascii: "="), count: (4 - bytes.count % 4) % 4)
        return Base64.decode(bytes)
    }
}
