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

    var column: String { self == .user ? "user" : "model" }
}

extension UsageStore {
    /// Characters of a user or model name the status page's queries keep: the page shows fewer, and however long
    /// the names in the ledger (rows written before `UsageRow.maxModelBytes`, or by another program), a query's
    /// groups stay this small.
    public static let pageNameLength = 256

    /// Totals per UTC day of the rows from `since` to before `until` (Unix ms), oldest first: one line per day
    /// that has rows, so at most one per day of the range, whatever the ledger holds. One scan of those rows: call
    /// it from a thread of its own (`StatusHistoryReader`), never on an event loop.
    public func dayTotals(since: Int64, until: Int64) throws(SQLiteError) -> [UsageDayTotals] {
        guard try hasTable() else { return [] }
        let query = try database.prepare("""
            SELECT time / 86400000, count(*),
                   coalesce(sum(status >= 400 AND status < 500), 0), coalesce(sum(status >= 500), 0),
                   coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0),
                   coalesce(sum(CASE WHEN status < 400 THEN ttfb_us END), 0),
                   coalesce(sum(status < 400 AND ttfb_us IS NOT NULL), 0)
            FROM usage WHERE time >= ?1 AND time < ?2 GROUP BY 1 ORDER BY 1
            """)
        try query.bind([.integer(since), .integer(until)])
        defer { query.reset() }
        var out: [UsageDayTotals] = []
        while try query.step() {
            out.append(UsageDayTotals(
                day: query.int64(0) ?? 0, requests: Int(query.int64(1) ?? 0), clientErrors: Int(query.int64(2) ?? 0),
                serverErrors: Int(query.int64(3) ?? 0), tokens: Int(query.int64(4) ?? 0),
                ttfbMicrosSum: query.int64(5) ?? 0, ttfbCount: Int(query.int64(6) ?? 0)))
        }
        return out
    }

    /// The tokens per UTC day, from `since` to before `until` (Unix ms), of the `top` users or models that used
    /// the most tokens over the range (ties by name, rows without a name last; names with no tokens left out), names
    /// cut to `pageNameLength` characters. The ranking and the sums are made by SQLite: at most `top` names and
    /// one line per name and day come back, whatever the ledger holds. Two scans of those rows: call it from a
    /// thread of its own, never on an event loop.
    public func dayTokens(by split: UsageTokenSplit, since: Int64, until: Int64,
                          top: Int) throws(SQLiteError) -> [UsageDayTokens] {
        guard try hasTable(), top > 0 else { return [] }
        let name = "substr(\(split.column), 1, \(Self.pageNameLength))"
        let tokens = "coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)"
        // `IN` never matches NULL, so the rows without a name are let in by the second test when they ranked.
        let query = try database.prepare("""
            WITH top AS (
                SELECT \(name) AS name, sum(\(tokens)) AS total FROM usage WHERE time >= ?1 AND time < ?2
                GROUP BY 1 HAVING total > 0 ORDER BY total DESC, name IS NULL, name LIMIT ?3)
            SELECT time / 86400000, \(name), coalesce(sum(\(tokens)), 0) FROM usage
            WHERE time >= ?1 AND time < ?2
              AND (\(name) IN (SELECT name FROM top WHERE name IS NOT NULL)
                   OR (\(split.column) IS NULL AND EXISTS (SELECT 1 FROM top WHERE name IS NULL)))
            GROUP BY 1, 2 ORDER BY 1, 2
            """)
        try query.bind([.integer(since), .integer(until), .integer(Int64(top))])
        defer { query.reset() }
        var out: [UsageDayTokens] = []
        while try query.step() {
            out.append(UsageDayTokens(day: query.int64(0) ?? 0, name: query.text(1), tokens: Int(query.int64(2) ?? 0)))
        }
        return out
    }
}
