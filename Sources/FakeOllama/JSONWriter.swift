/// Appends JSON to a byte buffer in the exact shape Go's `encoding/json` produces: keys in the order written, no
/// spaces, `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`-style sequences, control characters as `\n`, `\r`,
/// `\t` or `\u00XX`.
///
/// Field order matters because tests compare bytes between direct and proxied runs; Go marshals struct fields in
/// declaration order, so each writer call site follows the order of the struct in Ollama's `api/types.go`.
struct JSONWriter {
    /// The bytes written so far.
    var bytes: [UInt8] = []
    // One entry per open object/array: whether the next member is the first (so no comma).
    private var first: [Bool] = []

    init(reserving capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
        first.reserveCapacity(8)
    }

    mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); first.append(true) }
    mutating func endObject() { first.removeLast(); bytes.append(UInt8(ascii: "}")) }
    mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); first.append(true) }
    mutating func endArray() { first.removeLast(); bytes.append(UInt8(ascii: "]")) }

    /// Writes `"name":`; the next value call supplies the value.
    mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        pendingValue = true
    }

    /// Writes a key that is only known at run time (map keys such as `model_info`).
    mutating func key(dynamic name: String) {
        separate()
        appendQuoted(name)
        bytes.append(UInt8(ascii: ":"))
        pendingValue = true
    }

    mutating func string(_ value: String) { separate(); appendQuoted(value) }
    mutating func int(_ value: Int) { separate(); appendDecimal(value) }
    mutating func bool(_ value: Bool) { separate(); append(value ? "true" : "false") }
    mutating func null() { separate(); append("null") }
    /// A float as Go prints small float32/float64 values (shortest round-trip decimal, no exponent for 1e-6...1e21).
    mutating func float(_ value: Float) { separate(); append(value == value.rounded() ? String(Int(value)) : "\(value)") }
    /// Raw JSON text, trusted to be valid.
    mutating func raw(_ text: String) { separate(); append(text) }

    // key(...) sets this so the following value does not emit a comma.
    private var pendingValue = false

    private mutating func separate() {
        if pendingValue { pendingValue = false; return }
        guard !first.isEmpty else { return }
        if first[first.count - 1] {
            first[first.count - 1] = false
        } else {
            bytes.append(UInt8(ascii: ","))
        }
    }

    private mutating func append(_ text: String) {
        var t = text
        t.withUTF8 { bytes.append(contentsOf: $0) }
    }

    private mutating func appendDecimal(_ value: Int) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        let v = value.magnitude
        // The largest power of ten not above v, then one digit per power, most significant first.
        var scale: UInt = 1
        while v / scale >= 10 { scale *= 10 }
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8((v / scale) % 10))
            scale /= 10
        } while scale > 0
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func appendQuoted(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for scalar in value.unicodeScalars {
            switch scalar.value {
            case 0x22: bytes.append(contentsOf: [0x5C, 0x22])
            case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00..<0x20, 0x3C, 0x3E, 0x26, 0x2028, 0x2029:
                let v = scalar.value
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"),
                                          Self.hex[Int(v >> 12) & 15], Self.hex[Int(v >> 8) & 15],
                                          Self.hex[Int(v >> 4) & 15], Self.hex[Int(v) & 15]])
            case 0x20..<0x80:
                bytes.append(UInt8(scalar.value))
            default:
                bytes.append(contentsOf: Array(String(scalar).utf8))
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
