/// Standard base64 (RFC 4648 §4, with padding), as used by `Authorization: Basic` and `{SHA}`/`{SSHA}` hashes.
///
/// The decoder is strict: only the standard alphabet, length a multiple of 4, `=` only as final padding, and
/// unused bits zero. Anything else is nil, so one credential has exactly one accepted spelling.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// 0...63 for an alphabet byte, 255 for anything else.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 255, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// Encodes `bytes` with padding.
    static func encode<C: Collection<UInt8>>(_ bytes: C) -> String {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var i = 0
        while i < input.count {
            let b0 = UInt32(input[i])
            let b1 = i + 1 < input.count ? UInt32(input[i + 1]) : 0
            let b2 = i + 2 < input.count ? UInt32(input[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(i + 1 < input.count ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < input.count ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes strictly; nil for anything that is not canonical padded base64.
    static func decode<C: Collection<UInt8>>(_ text: C) -> [UInt8]? where C.Index == Int {
        let count = text.count
        guard count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count / 4 * 3)
        var index = text.startIndex
        while index < text.endIndex {
            let last = index + 4 == text.endIndex
            var quad: UInt32 = 0
            var padding = 0
            for k in 0..<4 {
                let c = text[index + k]
                if c == UInt8(ascii: "=") {
                    // Padding only in the last group's final one or two positions.
                    guard last, k >= 2 else { return nil }
                    padding += 1
                    quad <<= 6
                    continue
                }
                guard padding == 0 else { return nil }
                let v = values[Int(c)]
                guard v != 255 else { return nil }
                quad = quad << 6 | UInt32(v)
            }
            switch padding {
            case 0:
                out += [UInt8(quad >> 16 & 0xFF), UInt8(quad >> 8 & 0xFF), UInt8(quad & 0xFF)]
            case 1:
                guard quad & 0xFF == 0 else { return nil }
                out += [UInt8(quad >> 16 & 0xFF), UInt8(quad >> 8 & 0xFF)]
            default:
                guard quad & 0xFFFF == 0 else { return nil }
                out.append(UInt8(quad >> 16 & 0xFF))
            }
            index += 4
        }
        return out
    }
}
