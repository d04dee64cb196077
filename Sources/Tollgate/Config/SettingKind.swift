/// What a setting's value looks like, and the range or choices it must fall in.
///
/// The kind decides how text from a flag, a `TOLLGATE_*` variable or the config file is read, and which
/// `ResolvedConfig` accessor returns it. Addresses, URLs and CIDRs are `.string` or `.list` here: the code that
/// builds a `ServerConfig` validates them.
public enum SettingKind: Sendable, Equatable {
    /// Any text (a path, an address, a URL).
    case string
    /// A decimal integer within the range.
    case int(ClosedRange<Int>)
    /// A decimal number (digits, an optional fraction) within the range.
    case double(ClosedRange<Double>)
    /// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
    case bool
    /// One of a fixed set of words; read back with `ResolvedConfig.string`.
    case choice([String])
    /// A list of strings: repeat the key or separate items with commas.
    case list
    /// A list of whole lines: repeat the key, one item per occurrence, never split at commas (an item holds its own
    /// comma lists, as a `policy` line does). A `TOLLGATE_*` variable separates items with `;`.
    case lines

    /// Whether a key of this kind may repeat in a file (each occurrence appends).
    public var isList: Bool {
        switch self {
        case .list, .lines: return true
        default: return false
        }
    }

    /// Whether a config-file value of this kind is split into items at commas.
    var splitsAtCommas: Bool { self == .list }

    /// A short name for help and messages: "integer 1...256", "one of text, none".
    public var summary: String {
        switch self {
        case .string: return "string"
        case .int(let range): return "integer \(range.lowerBound)...\(range.upperBound)"
        case .double(let range):
            return "number \(SettingValue.format(range.lowerBound))...\(SettingValue.format(range.upperBound))"
        case .bool: return "true or false"
        case .choice(let words): return "one of " + words.joined(separator: ", ")
        case .list: return "list"
        case .lines: return "list of lines"
        }
    }

    /// Reads one scalar value (not a list) from its unquoted text; the error is the message without location.
    func parseScalar(_ text: String) -> Result<SettingValue, SettingValueError> {
        switch self {
        case .string:
            return .success(.string(text))
        case .int(let range):
            guard let n = Int(text) else {
                return .failure(SettingValueError("expected an integer, got \(text.debugDescription)"))
            }
            guard range.contains(n) else {
                return .failure(SettingValueError("\(n) is out of range (\(range.lowerBound)...\(range.upperBound))"))
            }
            return .success(.int(n))
        case .double(let range):
            guard let d = SettingKind.decimal(text) else {
                return .failure(SettingValueError("expected a number, got \(text.debugDescription)"))
            }
            guard range.contains(d) else {
                return .failure(SettingValueError("\(SettingValue.format(d)) is out of range "
                    + "(\(SettingValue.format(range.lowerBound))...\(SettingValue.format(range.upperBound)))"))
            }
            return .success(.double(d))
        case .bool:
            switch text {
            case "true", "yes", "on", "1": return .success(.bool(true))
            case "false", "no", "off", "0": return .success(.bool(false))
            default: return .failure(SettingValueError("expected true or false, got \(text.debugDescription)"))
            }
        case .choice(let words):
            guard words.contains(text) else {
                return .failure(SettingValueError("expected one of \(words.joined(separator: ", ")), "
                    + "got \(text.debugDescription)"))
            }
            return .success(.string(text))
        case .list, .lines:
            return .success(.list([text]))
        }
    }

    /// Reads items as this kind's value: a list keeps them all; a scalar needs exactly one.
    func parse(items: [String]) -> Result<SettingValue, SettingValueError> {
        if isList { return .success(.list(items)) }
        guard items.count == 1 else {
            return .failure(SettingValueError("takes one value, not a list"))
        }
        return parseScalar(items[0])
    }

    /// `[+-]digits[.digits]` or `[+-].digits` as a Double; nil for anything else (no "nan", "inf", exponents, hex).
    static func decimal(_ text: String) -> Double? {
        var digits = 0
        var dots = 0
        for (i, byte) in text.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
            case UInt8(ascii: "."): dots += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"): if i != 0 { return nil }
            default: return nil
            }
        }
        guard digits > 0, dots <= 1, !text.hasSuffix(".") else { return nil }
        return Double(text)
    }
}

/// Why a text is not a valid value for a setting: the message only, without file, line or key.
struct SettingValueError: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}
