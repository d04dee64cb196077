import Glibc

/// The `Date` header value Go's net/http sends ("Mon, 02 Jan 2006 15:04:05 GMT"), formatted at most once a second.
///
/// One per connection thread, so no locking. Formatted by hand: `strftime` would follow the process locale.
struct HTTPDate {
    private var second: time_t = -1
    private var cached: [UInt8] = []
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The current date in IMF-fixdate form, as bytes.
    mutating func current() -> [UInt8] {
        let now = time(nil)
        if now != second {
            second = now
            var t = now
            var p = tm()
            gmtime_r(&t, &p)
            func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
            let text = "\(Self.days[Int(p.tm_wday)]), \(two(p.tm_mday)) \(Self.months[Int(p.tm_mon)]) \(p.tm_year + 1900) "
                + "\(two(p.tm_hour)):\(two(p.tm_min)):\(two(p.tm_sec)) GMT"
            cached = Array(text.utf8)
        }
        return cached
    }
}
