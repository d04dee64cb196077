/// Reads `--expires`: a lifetime (`90d`, `12h`, `30m`, `2w`, `3600s`) counted from now, or a UTC date
/// (`2027-01-31`, the key then works until that day begins). A time not after now is refused.
public enum KeyExpiry {
    /// Seconds since the epoch when the key stops working, or the reason `text` is not a usable expiry.
    public static func parse(_ text: String, now: Int64) -> Result<Int64, KeyStoreError> {
        let t = String(text.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
        if let date = utcDate(t) {
            guard date > now else { return .failure(KeyStoreError("--expires \(t) is in the past")) }
            return .success(date)
        }
        // Shaped like a date but not one (2027-02-31, 2027-13-01): refused, never rolled over into the next month.
        if t.utf8.count == 10, t.split(separator: "-", omittingEmptySubsequences: false).count == 3 {
            return .failure(KeyStoreError("--expires \(t.debugDescription) is not a valid date (YYYY-MM-DD, UTC)"))
        }
        guard let unit = t.last, let factor = units[unit], let count = Int64(t.dropLast()) else {
            return .failure(KeyStoreError("--expires \(t.debugDescription): expected a lifetime such as 90d, 12h, 30m, 2w "
                                          + "or a date YYYY-MM-DD (UTC)"))
        }
        guard count > 0 else { return .failure(KeyStoreError("--expires \(t) is in the past (give a lifetime above 0)")) }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: factor)
        guard !overflow, seconds <= 100 * 366 * 86_400 else {
            return .failure(KeyStoreError("--expires \(t) is more than 100 years away"))
        }
        return .success(now + seconds)
    }

    private static let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400]

    /// Days in month `m` (1-12) of year `y` (proleptic Gregorian).
    static func daysIn(month m: Int64, year y: Int64) -> Int64 {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// `YYYY-MM-DD` (a day that exists: 2027-02-31 does not) as seconds since the epoch at 00:00 UTC (days from civil, Howard Hinnant's algorithm).
    static func utcDate(_ text: String) -> Int64? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y0 = Int64(parts[0]), let m = Int64(parts[1]), let d = Int64(parts[2]),
              (1...12).contains(m), (1...daysIn(month: m, year: y0)).contains(d) else { return nil }
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return (era * 146_097 + doe - 719_468) * 86_400
    }
}
