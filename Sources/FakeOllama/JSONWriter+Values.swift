import Foundation

/// Values whose shape the request decided: decoded JSON written back as Go's `encoding/json` writes a
/// `map[string]any` (keys sorted, numbers as float64).
extension JSONWriter {
    /// A float64 as Go writes it: no fraction for whole numbers, the shortest round-trip decimal otherwise, and
    /// exponents without a leading zero (`1e-7`).
    mutating func double(_ value: Double) {
        if value == value.rounded() && abs(value) < 1e15 {
            int(Int(value))
            return
        }
        var text = "\(value)"
        if let e = text.firstIndex(of: "e") {
            var exponent = String(text[text.index(after: e)...])
            let sign = exponent.hasPrefix("-") ? "-" : "+"
            exponent = String(exponent.drop(while: { $0 == "-" || $0 == "+" || $0 == "0" }))
            text = String(text[..<e]) + "e" + sign + (exponent.isEmpty ? "0" : exponent)
        }
        raw(text)
    }

    /// A value decoded by `JSONSerialization`, written with object keys sorted as Go sorts map keys.
    mutating func any(_ value: Any?) {
        switch value {
        case nil, is NSNull:
            null()
        case let s as String:
            string(s)
        case let n as NSNumber:
            if RequestBody.isBool(n) { bool(n.boolValue) } else { double(n.doubleValue) }
        case let b as Bool:
            bool(b)
        case let a as [Any]:
            beginArray()
            for v in a { any(v) }
            endArray()
        case let o as [String: Any]:
            beginObject()
            for k in o.keys.sorted() {
                key(dynamic: k)
                any(o[k])
            }
            endObject()
        default:
            null()
        }
    }
}
