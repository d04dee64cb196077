/// Writes commands as RESP2 arrays of bulk strings, the only form a Redis server must accept.
public enum RESPEncoder {
    /// Appends `*<n>\r\n` then `$<len>\r\n<bytes>\r\n` per argument to `out`.
    public static func append(command arguments: [[UInt8]], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "*"))
        appendDecimal(arguments.count, to: &out)
        for arg in arguments {
            out.append(UInt8(ascii: "$"))
            appendDecimal(arg.count, to: &out)
            out.append(contentsOf: arg)
            out.append(0x0D)
            out.append(0x0A)
        }
    }

    /// One command as bytes.
    public static func encode(_ arguments: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        append(command: arguments, to: &out)
        return out
    }

    private static func appendDecimal(_ n: Int, to out: inout [UInt8]) {
        if n == 0 {
            out.append(UInt8(ascii: "0"))
        } else {
            var digits: [UInt8] = []
            var v = n
            while v > 0 { digits.append(UInt8(ascii: "0") + UInt8(v % 10)); v /= 10 }
            out.append(contentsOf: digits.reversed())
        }
        out.append(0x0D)
        out.append(0x0A)
    }
}
