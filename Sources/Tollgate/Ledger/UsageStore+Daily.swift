import TollgateIO

/// One UTC day of the usage ledger, every row of it: what the status page's request and latency charts are drawn
/// from.
public struct UsageDayTotals: Sendable, Equatable {
    /// Days since 1970-01-01 (UTC).
    public var day: Int64
    public var requests: Int
    /// Requests answered with a status of 400 to 499 (499: the client went away first).
    public var clientErrors: Int
    /// Requests answered with a status of 500 or more.
    public var serverErrors: Int
    /// Prompt plus completion tokens.
    public var tokens: Int
    /// The sum and number of the time-to-first-byte values of requests answered below 400 (for a streamed
    /// generation the first byte carries the first token).
    public var ttfbMicrosSum: Int64
    public var ttfbCount: Int

    public init(day: Int64, requests: Int, clientErrors: Int = 0, serverErrors: Int = 0, tokens: Int = 0,
                ttfbMicrosSum: Int64 = 0, ttfbCount: Int = 0) {
        self.day = day
        self.requests = requests
        self.clientErrors = clientErrors
        self.serverErrors = serverErrors
        self.tokens = tokens
        self.ttfbMicrosSum = ttfbMicrosSum
        self.ttfbCount = ttfbCount
    }
}

/// One user's or one model's tokens on one UTC day: a point of the status page's token charts.
public struct UsageDayTokens: Sendable, Equatable {
    /// Days since 1970-01-01 (UTC).
    public var day: Int64
    /// The user or model, cut to `UsageStore.pageNameLength` characters; nil: rows that had none.
    public var name: String?
    public var tokens: Int

    public init(day: Int64, name: String?, tokens: Int) {
        self.day = day
        self.name = name
        self.tokens = tokens
    }
}

/// What the status page's token charts are split by.
public enum UsageTokenSplit: Sendable {
    case user, model
}

/// The status page's history as one pass over the ledger's rows reads it: totals per day, and the tokens per day
/// of the users and models that used the most.
public struct UsageDayHistory: Sendable, Equatable {
    public var days: [UsageDayTotals] = []
    public var users: [UsageDayTokens] = []
    public var models: [UsageDayTokens] = []
}

extension UsageStore {
    /// Characters of a user or model name the status page's queries keep: the page shows fewer, and however long
    /// the names in the ledger (rows written before `UsageRow.maxModelBytes`, or by another program), what is
    /// tallied stays this small.
    public static let pageNameLength = 256

    /// Distinct names (users, then models) a pass tallies at most. When a new name finds them all taken, the half
    /// with the fewest tokens so far is let go (their tokens then count in the days' totals only, drawn as
    /// "others"): names with many tokens stay named however many small ones come before or after them.
    public static let pageNamesTallied = 10_000

    /// The rows from `since` to before `until` (Unix ms) as the status page draws them, in one pass over them (the
    /// index on time: the rows outside the range are not read): per UTC day that has rows, oldest first, its totals;
    /// and the tokens per day of the `top` users and of the `top` models with the most tokens over the range (ties
    /// by name, rows without a name last; names with no tokens left out), names cut to `pageNameLength` characters.
    ///
    /// The names are tallied here, not by SQLite: a `GROUP BY` sorts every row of the range through temporary
    /// files. Only rows with tokens are read for them: a name a client makes up (a request that is refused, a
    /// model that does not exist) has none. Memory is bounded by the days, and by the names with tokens (at most
    /// `pageNamesTallied`); sums saturate instead of failing. Reads for as long as the range has rows: call it from
    /// a thread of its own (`StatusHistoryReader`), never on an event loop.
    public func dayHistory(since: Int64, until: Int64, top: Int) throws(SQLiteError) -> UsageDayHistory {
        guard try hasTable() else { return UsageDayHistory() }
        var out = UsageDayHistory(days: try dayTotals(since: since, until: until))
        guard top > 0 else { return out }
        let tokens = "coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)"
        let query = try database.prepare("""
            SELECT time, \(tokens), user, model FROM usage WHERE time >= ?1 AND time < ?2 AND \(tokens) > 0
            """)
        try query.bind([.integer(since), .integer(until)])
        defer { query.reset() }
        var users = NameTally(), models = NameTally()
        while try query.step() {
            let day = Self.day(of: query.int64(0) ?? 0)
            let tokens = Self.clamped(query.int64(1) ?? 0)
            users.add(query, column: 2, day: day, tokens: tokens)
            models.add(query, column: 3, day: day, tokens: tokens)
        }
        out.users = users.lines(top: top)
        out.models = models.lines(top: top)
        return out
    }

    /// Totals per UTC day of the rows from `since` to before `until` (Unix ms), oldest first: one line per day
    /// that has rows. Each day is summed by SQLite on its own (`GROUP BY` over the range would sort every row
    /// through temporary files), found by a seek on the index on time; sums saturate instead of failing.
    public func dayTotals(since: Int64, until: Int64) throws(SQLiteError) -> [UsageDayTotals] {
        guard try hasTable() else { return [] }
        let next = try database.prepare("SELECT min(time) FROM usage WHERE time >= ?1 AND time < ?2")
        defer { next.reset() }
        let sums = try database.prepare("""
            SELECT count(*), total(status >= 400 AND status < 500), total(status >= 500),
                   total(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)),
                   total(CASE WHEN status < 400 THEN ttfb_us END), total(status < 400 AND ttfb_us IS NOT NULL)
            FROM usage WHERE time >= ?1 AND time < ?2
            """)
        defer { sums.reset() }
        var out: [UsageDayTotals] = []
        var from = since
        while from < until {
            next.reset()
            try next.bind([.integer(from), .integer(until)])
            guard try next.step(), let first = next.int64(0) else { break }
            let day = Self.day(of: first)
            let end = min(until, (day + 1) * 86_400_000)
            sums.reset()
            try sums.bind([.integer(first), .integer(end)])
            guard try sums.step() else { break }
            out.append(UsageDayTotals(
                day: day, requests: Int(sums.int64(0) ?? 0), clientErrors: sums.saturating(1),
                serverErrors: sums.saturating(2), tokens: sums.saturating(3),
                ttfbMicrosSum: Int64(sums.saturating(4)), ttfbCount: sums.saturating(5)))
            from = end
        }
        return out
    }

    /// The UTC day (days since 1970-01-01) of `time` (Unix ms).
    static func day(of time: Int64) -> Int64 {
        time >= 0 ? time / 86_400_000 : (time + 1) / 86_400_000 - 1
    }

    /// The tokens per UTC day, from `since` to before `until` (Unix ms), of the `top` users or models that used
    /// the most tokens over the range (`dayHistory`).
    public func dayTokens(by split: UsageTokenSplit, since: Int64, until: Int64,
                          top: Int) throws(SQLiteError) -> [UsageDayTokens] {
        let history = try dayHistory(since: since, until: until, top: top)
        return split == .user ? history.users : history.models
    }

    /// `value` within 0 and `Int.max` (a count a row carries: never negative on the page).
    static func clamped(_ value: Int64) -> Int { value < 0 ? 0 : Int(value) }
}

/// One split's names and their tokens per day, as a pass reads rows. The few names seen last are recognised by
/// their bytes, so that a name's text is made and hashed once per change of name, not once per row.
private struct NameTally {
    private var names: [String?] = []
    private var slots: [String?: Int] = [:]
    private var totals: [Int] = []
    private var perDay: [[Int64: Int]] = []
    /// The names seen last, by their bytes as stored (a name cut to `pageNameLength` may have several).
    private var recent: [(bytes: [UInt8], slot: Int)] = []
    private var recentNext = 0
    private static let recentCount = 8

    /// Adds `tokens` to `day` of the name in `column` of the current row.
    mutating func add(_ query: SQLiteStatement, column: Int32, day: Int64, tokens: Int) {
        let slot = slot(query, column)
        totals[slot] = totals[slot].saturatingAdd(tokens)
        perDay[slot][day] = (perDay[slot][day] ?? 0).saturatingAdd(tokens)
    }

    /// The slot of the name in `column` of the current row.
    private mutating func slot(_ query: SQLiteStatement, _ column: Int32) -> Int {
        query.withText(column) { bytes -> Int in
            guard let bytes else { return slot(for: nil) }
            for r in recent where r.bytes.count == bytes.count && r.bytes.elementsEqual(bytes) { return r.slot }
            let name = String(String(decoding: bytes, as: UTF8.self).unicodeScalars.prefix(UsageStore.pageNameLength))
            let slot = slot(for: name)
            let entry = (Array(bytes), slot)
            if recent.count < Self.recentCount { recent.append(entry) } else { recent[recentNext] = entry }
            recentNext = (recentNext + 1) % Self.recentCount
            return slot
        }
    }

    private mutating func slot(for name: String?) -> Int {
        if let slot = slots[name] { return slot }
        if names.count >= UsageStore.pageNamesTallied { compact() }
        slots[name] = names.count
        names.append(name)
        totals.append(0)
        perDay.append([:])
        return names.count - 1
    }

    /// Keeps the half of the names with the most tokens so far (`pageNamesTallied`).
    private mutating func compact() {
        let kept = names.indices.sorted { totals[$0] > totals[$1] }.prefix(UsageStore.pageNamesTallied / 2)
        names = kept.map { names[$0] }
        totals = kept.map { totals[$0] }
        perDay = kept.map { perDay[$0] }
        slots = [:]
        for (slot, name) in names.enumerated() { slots[name] = slot }
        recent.removeAll()
        recentNext = 0
    }

    /// The `top` names' lines, by day then name (nil first).
    func lines(top: Int) -> [UsageDayTokens] {
        guard top > 0 else { return [] }
        let ranked = names.indices.sorted {
            StatusHistory.ranksBefore((totals[$0], names[$0]), (totals[$1], names[$1]))
        }.prefix(top)
        var out: [UsageDayTokens] = []
        for slot in ranked {
            for (day, tokens) in perDay[slot] { out.append(UsageDayTokens(day: day, name: names[slot], tokens: tokens)) }
        }
        return out.sorted { a, b in
            if a.day != b.day { return a.day < b.day }
            switch (a.name, b.name) {
            case let (x?, y?): return x < y
            case (nil, _?): return true
            default: return false
            }
        }
    }
}

extension SQLiteStatement {
    /// Column `index`, a `total()` (a float: it never fails on overflow as `sum()` does), as an integer clamped to
    /// `Int`'s range; 0 when NULL or not a number.
    func saturating(_ index: Int32) -> Int {
        Int(clamping: double(index) ?? 0)
    }
}
