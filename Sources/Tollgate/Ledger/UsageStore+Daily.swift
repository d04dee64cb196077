import TollgateIO

/// One (UTC day, user, model) group of the usage ledger: what the status page's charts are drawn from.
public struct UsageDailyLine: Sendable, Equatable {
    /// Days since 1970-01-01 (UTC).
    public var day: Int64
    /// nil: rows without a user (public paths, authentication off).
    public var user: String?
    /// nil: rows that named no model.
    public var model: String?
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

    public init(day: Int64, user: String?, model: String?, requests: Int, clientErrors: Int = 0, serverErrors: Int = 0,
                tokens: Int = 0, ttfbMicrosSum: Int64 = 0, ttfbCount: Int = 0) {
        self.day = day
        self.user = user
        self.model = model
        self.requests = requests
        self.clientErrors = clientErrors
        self.serverErrors = serverErrors
        self.tokens = tokens
        self.ttfbMicrosSum = ttfbMicrosSum
        self.ttfbCount = ttfbCount
    }
}

extension UsageStore {
    /// Totals since `since` (Unix ms) grouped by UTC day, user and model, oldest day first. One scan of the rows
    /// kept since then: call it from a thread of its own (`StatusHistoryReader`), never on an event loop.
    public func daily(since: Int64) throws(SQLiteError) -> [UsageDailyLine] {
        guard try hasTable() else { return [] }
        let query = try database.prepare("""
            SELECT time / 86400000, user, model, count(*),
                   coalesce(sum(status >= 400 AND status < 500), 0), coalesce(sum(status >= 500), 0),
                   coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0),
                   coalesce(sum(CASE WHEN status < 400 THEN ttfb_us END), 0),
                   coalesce(sum(status < 400 AND ttfb_us IS NOT NULL), 0)
            FROM usage WHERE time >= ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            """)
        try query.bind(1, .integer(since))
        defer { query.reset() }
        var out: [UsageDailyLine] = []
        while try query.step() {
            out.append(UsageDailyLine(
                day: query.int64(0) ?? 0, user: query.text(1), model: query.text(2), requests: Int(query.int64(3) ?? 0),
                clientErrors: Int(query.int64(4) ?? 0), serverErrors: Int(query.int64(5) ?? 0),
                tokens: Int(query.int64(6) ?? 0), ttfbMicrosSum: query.int64(7) ?? 0,
                ttfbCount: Int(query.int64(8) ?? 0)))
        }
        return out
    }
}
