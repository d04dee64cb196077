/// Text made safe for the status page's HTML and SVG: every user-controlled string (user names, model names,
/// backend names, error details) goes through `escape` before it reaches the page.
enum HTMLText {
    /// `text` with `&`, `<`, `>`, `"` and `'` as character references, for element content and quoted attribute
    /// values alike; characters XML 1.0 forbids (C0 controls other than tab, newline and return; U+FFFE, U+FFFF)
    /// become U+FFFD, so that the page also parses as XML (the tests read it with an XML parser). Characters that
    /// are not seen but change what is seen (`isInvisible`: a right-to-left override makes `x‮b7:lartsim` read
    /// `xmistral:7b`) are shown as their code, `[U+202E]`. Longer than
    /// `limit` characters, the text is cut there and ends in "…" (a model name is whatever a client sent).
    static func escape(_ text: String, limit: Int = 120) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit {
                out += "…"
                break
            }
            count += 1
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    out += "\u{FFFD}"
                } else if HTMLText.isInvisible(scalar) {
                    out += "[U+" + HTMLText.hex(scalar.value) + "]"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// C1 controls, format characters (bidirectional overrides and isolates, zero-width characters, soft hyphens),
    /// line and paragraph separators, the characters Unicode says to draw as nothing (default-ignorable: variation
    /// selectors, the combining grapheme joiner, the Hangul fillers), spaces other than U+0020 and the blank Braille
    /// pattern: each could make two names read the same.
    static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        if (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2800 { return true }
        if scalar.properties.isDefaultIgnorableCodePoint { return true }
        switch scalar.properties.generalCategory {
        case .format, .lineSeparator, .paragraphSeparator: return true
        case .spaceSeparator: return scalar != " "
        default: return false
        }
    }

    /// `value` in upper-case hexadecimal, at least four digits.
    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// `n` with thousands separated by commas: 1234567 → "1,234,567".
    static func number(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// A short form for chart axes: 950, 1.2k, 3.4M, 5.6G.
    static func compact(_ value: Double) -> String {
        let units: [(Double, String)] = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
        for (size, suffix) in units where value >= size {
            return decimal(value / size, places: value / size < 10 ? 1 : 0) + suffix
        }
        return decimal(value, places: value < 10 && value != value.rounded() ? 1 : 0)
    }

    /// `value` with `places` decimals (0, 1 or 2), without Foundation.
    static func decimal(_ value: Double, places: Int) -> String {
        guard value.isFinite else { return "-" }
        let scale = places <= 0 ? 1.0 : places == 1 ? 10.0 : 100.0
        let scaled = Int(clamping: (value * scale).rounded())
        guard places > 0 else { return String(scaled) }
        let whole = scaled.magnitude / UInt(scale)
        var fraction = String(scaled.magnitude % UInt(scale))
        while fraction.count < places { fraction = "0" + fraction }
        return (scaled < 0 ? "-" : "") + "\(whole).\(fraction)"
    }

    /// A UTC date, "2026-12-05", from days since 1970-01-01.
    static func date(day: Int64) -> String {
        let (y, m, d) = UTCWindows.civil(fromDays: day)
        return "\(y)-\(two(m))-\(two(d))"
    }

    /// A UTC time, "2026-12-05 07:45:12 UTC", from Unix milliseconds.
    static func time(millis: Int64) -> String {
        let seconds = millis / 1000
        let s = seconds % 86_400
        return date(day: seconds / 86_400) + " \(two(s / 3600)):\(two(s / 60 % 60)):\(two(s % 60)) UTC"
    }

    private static func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
