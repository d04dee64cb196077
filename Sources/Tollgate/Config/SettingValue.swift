/// A setting's typed value, as read from a flag, a `TOLLGATE_*` variable, the config file or the default.
public enum SettingValue: Sendable, Equatable {
    /// A `.string` or `.choice` setting.
    case string(String)
    /// An `.int` setting.
    case int(Int)
    /// A `.double` setting.
    case double(Double)
    /// A `.bool` setting.
    case bool(Bool)
    /// A `.list` setting, items in the order given.
    case list([String])

    /// The value as it would be written in a config file (quoted where the parser needs quotes).
    public var fileText: String {
        switch self {
        case .string(let s): return SettingValue.quotedIfNeeded(s, inList: false)
        case .int(let n): return String(n)
        case .double(let d): return SettingValue.format(d)
        case .bool(let b): return b ? "true" : "false"
        case .list(let items): return items.map { SettingValue.quotedIfNeeded($0, inList: true) }.joined(separator: ", ")
        }
    }

    /// A number as the parser reads it back: "10", "0.25" (never an exponent for the ranges settings use).
    static func format(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        return String(d)
    }

    /// `text` unchanged when the parser would read it back as is, else double-quoted with `\"` and `\\`.
    static func quotedIfNeeded(_ text: String, inList: Bool) -> String {
        let needsQuotes = text.isEmpty
            || text.first == " " || text.first == "\t" || text.last == " " || text.last == "\t"
            || text.contains("#") || text.contains("\"") || text.contains("\\")
            || (inList && text.contains(","))
        guard needsQuotes else { return text }
        var out = "\""
        for ch in text.unicodeScalars {
            if ch == "\"" || ch == "\\" { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(ch)
        }
        return out + "\""
    }
}
