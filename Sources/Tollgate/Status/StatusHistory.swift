/// The usage ledger's last days as the status page draws them: per UTC day, requests, errors, time to first byte
/// and tokens, and the tokens of the users and of the models that used the most. Pure: built from what
/// `UsageStore.dayTotals` and `dayTokens` return, so its size is bounded by the days and the names shown, never by
/// what the ledger holds.
public struct StatusHistory: Sendable, Equatable {
    /// Days since 1970-01-01 (UTC) of the first and last day shown; every day between has a slot, used or not.
    public let firstDay: Int64
    public let lastDay: Int64
    /// Per day, oldest first.
    public private(set) var days: [Day]
    /// The users' tokens per day (rows without a user under nil), the largest total first, at most `limit` series
    /// with the last summing the others (`isRest`) when there were more.
    public private(set) var tokensByUser: [Series]
    /// The models' tokens per day, as `tokensByUser`.
    public private(set) var tokensByModel: [Series]

    /// One day's totals.
    public struct Day: Sendable, Equatable {
        public var day: Int64
        public var requests = 0
        public var clientErrors = 0
        public var serverErrors = 0
        public var tokens = 0
        public var ttfbMicrosSum: Int64 = 0
        public var ttfbCount = 0

        /// The mean time to first byte of the day's successful requests, in milliseconds; nil when none had one.
        public var meanTTFBMillis: Double? {
            ttfbCount == 0 ? nil : Double(ttfbMicrosSum) / Double(ttfbCount) / 1000
        }
    }

    /// One user's or model's values per day.
    public struct Series: Sendable, Equatable {
        /// nil: rows that had no user (or model).
        public var name: String?
        /// One value per day, oldest first.
        public var values: [Int]
        /// The sum of the entries `top` left out (`name` is then nil).
        public var isRest = false
        public var total: Int { values.saturatingSum() }
    }

    /// The history from `firstDay` to `lastDay` (inclusive); lines outside them are ignored. `users` and `models`
    /// hold the tokens per day of the `limit` largest users and models (`UsageStore.dayTokens` with `top: limit`):
    /// when the days' tokens come to more than theirs, there were others, and the last series becomes their sum.
    public init(firstDay: Int64, lastDay: Int64, days lines: [UsageDayTotals], users: [UsageDayTokens],
                models: [UsageDayTokens], limit: Int) {
        self.firstDay = firstDay
        self.lastDay = max(firstDay, lastDay)
        let count = Int(self.lastDay - firstDay) + 1
        days = (0..<count).map { Day(day: firstDay + Int64($0)) }
        for line in lines {
            let i = Int(line.day - firstDay)
            guard i >= 0 && i < count else { continue }
            // Counts a backend reported: sums stop at Int's bounds rather than trap.
            days[i].requests = days[i].requests.saturatingAdd(line.requests)
            days[i].clientErrors = days[i].clientErrors.saturatingAdd(line.clientErrors)
            days[i].serverErrors = days[i].serverErrors.saturatingAdd(line.serverErrors)
            days[i].tokens = days[i].tokens.saturatingAdd(line.tokens)
            days[i].ttfbMicrosSum = Int64(Int(days[i].ttfbMicrosSum).saturatingAdd(Int(line.ttfbMicrosSum)))
            days[i].ttfbCount = days[i].ttfbCount.saturatingAdd(line.ttfbCount)
        }
        let dayTokens = days.map(\.tokens)
        tokensByUser = StatusHistory.series(users, firstDay: firstDay, count: count, dayTokens: dayTokens, limit: limit)
        tokensByModel = StatusHistory.series(models, firstDay: firstDay, count: count, dayTokens: dayTokens, limit: limit)
    }

    /// `lines` as ranked series of `count` days; past `limit` names, or when `dayTokens` (every row's tokens per
    /// day) comes to more than the names hold, the first `limit` - 1 and one series summing the rest.
    private static func series(_ lines: [UsageDayTokens], firstDay: Int64, count: Int, dayTokens: [Int],
                               limit: Int) -> [Series] {
        var table: [String?: [Int]] = [:]
        for line in lines {
            let i = Int(line.day - firstDay)
            guard i >= 0 && i < count, line.tokens > 0 else { continue }
            table[line.name, default: Array(repeating: 0, count: count)][i] =
                (table[line.name]?[i] ?? 0).saturatingAdd(line.tokens)
        }
        let ranked = StatusHistory.ranked(table)
        var rest = dayTokens
        for s in ranked { for (i, v) in s.values.enumerated() { rest[i] = rest[i].saturatingSubtract(v) } }
        guard rest.contains(where: { $0 > 0 }), limit > 1 else { return top(ranked, limit: limit) }
        // Names beyond those read: the last one read joins them, so that the chart keeps `limit` entries.
        var kept = Array(ranked.prefix(limit - 1))
        for s in ranked.dropFirst(limit - 1) { for (i, v) in s.values.enumerated() { rest[i] = rest[i].saturatingAdd(v) } }
        kept.append(Series(name: nil, values: rest.map { max(0, $0) }, isRest: true))
        return kept
    }

    /// Whether the ledger had no row at all in these days.
    public var isEmpty: Bool { days.allSatisfy { $0.requests == 0 } }

    /// Largest total first; ties by name, nil last.
    private static func ranked(_ table: [String?: [Int]]) -> [Series] {
        table.map { Series(name: $0.key, values: $0.value) }.sorted { ranksBefore(($0.total, $0.name), ($1.total, $1.name)) }
    }

    /// The charts' order of names: the largest total first; ties by name, the unnamed last (`UsageStore.dayHistory`
    /// ranks the same way).
    static func ranksBefore(_ a: (total: Int, name: String?), _ b: (total: Int, name: String?)) -> Bool {
        if a.total != b.total { return a.total > b.total }
        switch (a.name, b.name) {
        case let (x?, y?): return x < y
        case (_?, nil): return true
        default: return false
        }
    }

    /// `series` cut to its first `limit` - 1 entries plus one series holding the rest (`isRest`); as is when it has
    /// `limit` entries or fewer. A chart keeps its legend readable this way.
    public static func top(_ series: [Series], limit: Int) -> [Series] {
        guard series.count > limit, limit > 1 else { return series }
        var kept = Array(series.prefix(limit - 1))
        var rest = Array(repeating: 0, count: series.first?.values.count ?? 0)
        for s in series.dropFirst(limit - 1) { for (i, v) in s.values.enumerated() { rest[i] = rest[i].saturatingAdd(v) } }
        kept.append(Series(name: nil, values: rest, isRest: true))
        return kept
    }
}
