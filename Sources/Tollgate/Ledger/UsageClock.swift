import Glibc
import TollgateIO

/// Wall-clock time as the ledger stores it (Unix milliseconds, UTC) and the windows quotas count in: the UTC day
/// and the UTC calendar month.
public enum UsageClock {
    /// Now, in Unix milliseconds.
    public static func nowMillis() -> Int64 {
        Int64(Syscall.wallNanos() / 1_000_000)
    }

    /// The start (00:00 UTC) of the day `millis` falls in.
    public static func dayStart(_ millis: Int64) -> Int64 {
        let day: Int64 = 86_400_000
        let r = millis % day
        return millis - (r < 0 ? r + day : r)
    }

    /// The start (the 1st, 00:00 UTC) of the month `millis` falls in.
    public static func monthStart(_ millis: Int64) -> Int64 {
        var seconds = time_t(dayStart(millis) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        parts.tm_mday = 1
        parts.tm_hour = 0
        parts.tm_min = 0
        parts.tm_sec = 0
        return Int64(timegm(&parts)) * 1000
    }
}
