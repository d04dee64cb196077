/// Durations written as a number and a unit, as admins type them: `45s`, `30m`, `36h`, `90d`, `12w`.
public enum DurationText {
    /// The seconds `text` stands for: a positive whole number followed by `s`, `m`, `h`, `d` or `w`; nil when it is
    /// not one (a bare number, a fraction, zero, an unknown unit, an overflow).
    public static func seconds(_ text: String) -> Int64? {
        guard let unit = text.last, let count = Int64(text.dropLast()), count > 0,
              text.first?.isNumber == true else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3_600
        case "d": scale = 86_400
        case "w": scale = 7 * 86_400
        default: return nil
        }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: scale)
        return overflow ? nil : seconds
    }
}
