/// The UTC calendar day and month a moment falls in, and when they end: the windows token and request quotas
/// count in. Pure arithmetic on Unix seconds (no time zones, no leap seconds, as Unix time has none).
public struct UTCWindows: Sendable, Equatable {
    /// Days since 1970-01-01.
    public let day: Int64
    /// Months since 1970-01 (year × 12 + month − 1, from 1970).
    public let month: Int64
    /// Unix seconds at which the day began and ends.
    public let dayStart: Int64
    public let dayEnd: Int64
    /// Unix seconds at which the month began and ends.
    public let monthStart: Int64
    public let monthEnd: Int64

    /// The windows holding `unixSeconds` (at or after 1970).
    public init(unixSeconds: Int64) {
        let s = max(0, unixSeconds)
        day = s / 86_400
        dayStart = day * 86_400
        dayEnd = dayStart + 86_400
        let (y, m, _) = UTCWindows.civil(fromDays: day)
        month = (y - 1970) * 12 + (m - 1)
        monthStart = UTCWindows.days(year: y, month: m, day: 1) * 86_400
        let (ny, nm) = m == 12 ? (y + 1, Int64(1)) : (y, m + 1)
        monthEnd = UTCWindows.days(year: ny, month: nm, day: 1) * 86_400
    }

    /// Year, month (1...12), day (1...31) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
    static func days(year y0: Int64, month m: Int64, day d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
