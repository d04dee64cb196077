import TollgateIO

/// The `usage` table of the state database: its schema, the ledger writer's insert and retention delete, and the
/// queries read at start-up (balances, tokens per key) and by `tollgate usage`.
///
/// A store owns one connection. Every call may wait on the disk or on another connection's lock: use it from a
/// thread of its own or at start-up, never on an event loop; one thread at a time.
public final class UsageStore: @unchecked Sendable {
    /// The connection (for the few callers that need more than the queries here).
    public let database: SQLiteDatabase
    private var insertStatement: SQLiteStatement?
    private var groupInsertStatement: SQLiteStatement?

    /// The table and its indexes: time, for every reader (each reads a range of time: the balances since the
    /// month's start, the status page's 30 days, `tollgate usage --since`, retention's oldest rows), so that none
    /// reads the whole ledger (a year by default); key_id for the tokens each key used. One index on time per insert,
    /// no more: ledgers of earlier releases had one on (user, time), which no query needs, replaced at the first
    /// open for writing (a minute for some tens of millions of rows, once).
    static let schema = """
        CREATE TABLE IF NOT EXISTS usage (
            id INTEGER PRIMARY KEY,
            time INTEGER NOT NULL,
            request_id TEXT NOT NULL,
            user TEXT,
            key_id TEXT,
            model TEXT,
            route TEXT NOT NULL,
            status INTEGER NOT NULL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            duration_us INTEGER NOT NULL,
            ttfb_us INTEGER,
            backend TEXT,
            charged_tokens INTEGER NOT NULL DEFAULT 0,
            counted_request INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS usage_time ON usage (time);
        DROP INDEX IF EXISTS usage_user_time;
        CREATE INDEX IF NOT EXISTS usage_key ON usage (key_id) WHERE key_id IS NOT NULL;
        """

    /// Opens the database at `path` for writing (created with its directory when missing, as `StateDatabase`
    /// does), with the table.
    public init(writing path: String, busyTimeoutMillis: Int32 = 1000) throws(SQLiteError) {
        database = try StateDatabase.openForWriting(path, busyTimeoutMillis: busyTimeoutMillis)
        let old = try database.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'usage_user_time'")
        if try old.step() {
            Diagnostics.info("usage ledger: \(path): indexing the rows by time (once, for this release; a few seconds "
                             + "per ten million rows)")
        }
        old.reset()
        try database.exec(UsageStore.schema)
    }

    /// Opens the database at `path` read-only: it must exist (a clear error naming it otherwise). A database that
    /// has no usage table yet reads as empty.
    public init(reading path: String) throws(SQLiteError) {
        database = try StateDatabase.openForReading(path)
    }

    /// Appends `rows` in one transaction, model names cut to `UsageRow.maxModelBytes`: groups of `rowsPerGroupInsert`
    /// through one multi-row insert (a statement run costs about as much as the rows it inserts: grouping saves a
    /// third of the writer's CPU per row), the rest one by one. Both statements are prepared once.
    public func insert(_ rows: [UsageRow]) throws(SQLiteError) {
        let group = try statement(rows: Self.rowsPerGroupInsert, cached: &groupInsertStatement)
        let single = try statement(rows: 1, cached: &insertStatement)
        try database.transaction { () throws(SQLiteError) in
            var next = rows.startIndex
            while rows.endIndex - next >= Self.rowsPerGroupInsert {
                for i in 0..<Self.rowsPerGroupInsert { try bind(rows[next + i], to: group, at: Int32(i * Self.columns.count)) }
                try group.run()
                next += Self.rowsPerGroupInsert
            }
            while next < rows.endIndex {
                try bind(rows[next], to: single, at: 0)
                try single.run()
                next += 1
            }
        }
    }

    /// Rows per multi-row insert.
    static let rowsPerGroupInsert = 16

    /// The columns an insert sets, in the order `bind` binds them.
    static let columns = ["time", "request_id", "user", "key_id", "model", "route", "status", "prompt_tokens",
                          "completion_tokens", "duration_us", "ttfb_us", "backend", "charged_tokens",
                          "counted_request"]

    private func statement(rows: Int, cached: inout SQLiteStatement?) throws(SQLiteError) -> SQLiteStatement {
        if let cached { return cached }
        let values = "(" + Array(repeating: "?", count: Self.columns.count).joined(separator: ", ") + ")"
        let made = try database.prepare("INSERT INTO usage (" + Self.columns.joined(separator: ", ") + ") VALUES "
                                        + Array(repeating: values, count: rows).joined(separator: ", "))
        cached = made
        return made
    }

    /// Binds `row`'s columns to parameters `base + 1`… of `statement`.
    private func bind(_ row: UsageRow, to statement: SQLiteStatement, at base: Int32) throws(SQLiteError) {
        try statement.bind(base + 1, .integer(row.time))
        try statement.bind(base + 2, .text(row.requestID))
        try statement.bind(base + 3, .text(row.user))
        try statement.bind(base + 4, .text(row.keyID))
        try statement.bind(base + 5, .text(row.model.map(UsageRow.storedModel)))
        try statement.bind(base + 6, .text(row.route))
        try statement.bind(base + 7, .integer(Int64(row.status)))
        try statement.bind(base + 8, .integer(row.promptTokens.map(Int64.init)))
        try statement.bind(base + 9, .integer(row.completionTokens.map(Int64.init)))
        try statement.bind(base + 10, .integer(row.durationMicros))
        try statement.bind(base + 11, .integer(row.ttfbMicros))
        try statement.bind(base + 12, .text(row.backend))
        try statement.bind(base + 13, .integer(Int64(row.chargedTokens)))
        try statement.bind(base + 14, .integer(row.countedRequest ? 1 : 0))
    }

    /// Deletes at most `limit` rows older than `before` (Unix ms) in one short transaction; returns how many. Called
    /// repeatedly, so that the writer never holds the write lock for long.
    public func deleteOlder(than before: Int64, limit: Int = 1000) throws(SQLiteError) -> Int {
        let delete = try database.prepare(
            "DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE time < ? ORDER BY time LIMIT ?)")
        return try database.transaction { () throws(SQLiteError) -> Int in
            try delete.bind([.integer(before), .integer(Int64(limit))])
            try delete.run()
            return database.changes
        }
    }

    /// Per user: tokens and requests since `dayStart` and since `monthStart` (Unix ms, UTC; see `UsageClock`): what
    /// a restarted server's quota balances are seeded from. Rows without a user are not counted.
    public func balances(dayStart: Int64, monthStart: Int64) throws(SQLiteError) -> [String: UsageBalance] {
        try perUser(dayStart: dayStart, monthStart: monthStart).mapValues {
            UsageBalance(day: UsageTotals(tokens: $0.dayTokens, requests: $0.dayRows),
                         month: UsageTotals(tokens: $0.monthTokens, requests: $0.monthRows))
        }
    }

    /// Per user since `dayStart` and `monthStart` (Unix ms): the tokens the quota charged and the requests it
    /// counted (`UsageRow.chargedTokens`, `countedRequest`), what the quota book is seeded from at start-up.
    public func charges(dayStart: Int64, monthStart: Int64) throws(SQLiteError) -> [String: Spending] {
        try perUser(dayStart: dayStart, monthStart: monthStart).mapValues {
            Spending(dayTokens: $0.dayCharged, monthTokens: $0.monthCharged, dayRequests: $0.dayCounted)
        }
    }

    /// One user's rows since the month's (and the day's) start.
    struct UserSums {
        var dayTokens = 0, dayRows = 0, monthTokens = 0, monthRows = 0
        var dayCharged = 0, monthCharged = 0, dayCounted = 0
    }

    /// The sums `balances` and `charges` return, in one pass over the rows since the earlier start (the index on
    /// time): summed here rather than by a `GROUP BY`, which would sort a month of rows through temporary files at
    /// every start, and saturating, so that counts a backend reported cannot make a start fail on an overflow.
    /// Memory is one entry per user (the users file's names).
    func perUser(dayStart: Int64, monthStart: Int64) throws(SQLiteError) -> [String: UserSums] {
        guard try hasTable() else { return [:] }
        let query = try database.prepare("""
            SELECT user, time, coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0), charged_tokens,
                   counted_request
            FROM usage WHERE time >= min(?1, ?2) AND user IS NOT NULL
            """)
        try query.bind([.integer(dayStart), .integer(monthStart)])
        defer { query.reset() }
        var out: [String: UserSums] = [:]
        var lastBytes: [UInt8] = []
        var lastUser = ""
        while try query.step() {
            let user: String = query.withText(0) { bytes in
                guard let bytes else { return "" }
                if bytes.elementsEqual(lastBytes) { return lastUser }
                lastBytes = Array(bytes)
                lastUser = String(decoding: bytes, as: UTF8.self)
                return lastUser
            }
            let time = query.int64(1) ?? 0
            let tokens = Self.clamped(query.int64(2) ?? 0)
            let charged = Self.clamped(query.int64(3) ?? 0)
            let counted = (query.int64(4) ?? 0) != 0 ? 1 : 0
            var sums = out[user] ?? UserSums()
            if time >= dayStart {
                sums.dayTokens = sums.dayTokens.saturatingAdd(tokens)
                sums.dayRows += 1
                sums.dayCharged = sums.dayCharged.saturatingAdd(charged)
                sums.dayCounted += counted
            }
            if time >= monthStart {
                sums.monthTokens = sums.monthTokens.saturatingAdd(tokens)
                sums.monthRows += 1
                sums.monthCharged = sums.monthCharged.saturatingAdd(charged)
            }
            out[user] = sums
        }
        return out
    }

    /// Tokens (prompt + completion) used by each API key over the rows kept: `tollgate keys list`'s column.
    public func tokensByKey() throws(SQLiteError) -> [String: Int] {
        guard try hasTable() else { return [:] }
        let query = try database.prepare("""
            SELECT key_id, coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0)
            FROM usage WHERE key_id IS NOT NULL GROUP BY key_id
            """)
        defer { query.reset() }
        var out: [String: Int] = [:]
        while try query.step() {
            if let key = query.text(0) { out[key] = Int(query.int64(1) ?? 0) }
        }
        return out
    }

    /// Totals since `since` (Unix ms) grouped as `by` says, largest total first (by day: oldest first).
    public func report(since: Int64, by grouping: UsageGrouping) throws(SQLiteError) -> [UsageReportLine] {
        guard try hasTable() else { return [] }
        let group: String
        switch grouping {
        case .user: group = "user"
        case .model: group = "model"
        case .key: group = "key_id"
        case .day: group = "strftime('%Y-%m-%d', time / 1000, 'unixepoch')"
        }
        let order = grouping == .day ? "1" : "5 DESC, 2 DESC, 1"
        let query = try database.prepare("""
            SELECT \(group), count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
                   coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0),
                   coalesce(sum(status >= 400), 0), coalesce(avg(duration_us), 0)
            FROM usage WHERE time >= ? GROUP BY 1 ORDER BY \(order)
            """)
        try query.bind(1, .integer(since))
        defer { query.reset() }
        var out: [UsageReportLine] = []
        while try query.step() {
            out.append(UsageReportLine(
                group: query.text(0), requests: Int(query.int64(1) ?? 0), promptTokens: Int(query.int64(2) ?? 0),
                completionTokens: Int(query.int64(3) ?? 0), tokens: Int(query.int64(4) ?? 0),
                errors: Int(query.int64(5) ?? 0), averageMillis: (query.double(6) ?? 0) / 1000))
        }
        return out
    }

    /// Every row since `since` (Unix ms), oldest first: for tests and exports.
    public func rows(since: Int64 = 0) throws(SQLiteError) -> [UsageRow] {
        guard try hasTable() else { return [] }
        let query = try database.prepare("""
            SELECT time, request_id, user, key_id, model, route, status, prompt_tokens, completion_tokens,
                   duration_us, ttfb_us, backend
            FROM usage WHERE time >= ? ORDER BY time, id
            """)
        try query.bind(1, .integer(since))
        defer { query.reset() }
        var out: [UsageRow] = []
        while try query.step() {
            out.append(UsageRow(
                time: query.int64(0) ?? 0, requestID: query.text(1) ?? "", user: query.text(2), keyID: query.text(3),
                model: query.text(4), route: query.text(5) ?? "", status: Int(query.int64(6) ?? 0),
                promptTokens: query.int64(7).map(Int.init), completionTokens: query.int64(8).map(Int.init),
                durationMicros: query.int64(9) ?? 0, ttfbMicros: query.int64(10), backend: query.text(11)))
        }
        return out
    }

    /// Whether the usage table exists (a database only the keys have written to has none yet).
    func hasTable() throws(SQLiteError) -> Bool {
        let query = try database.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage'")
        defer { query.reset() }
        return try query.step()
    }
}

/// Tokens and requests over one window.
public struct UsageTotals: Sendable, Equatable {
    public var tokens: Int
    public var requests: Int
    public init(tokens: Int, requests: Int) {
        self.tokens = tokens
        self.requests = requests
    }
}

/// One user's spending in the current UTC day and month.
public struct UsageBalance: Sendable, Equatable {
    public var day: UsageTotals
    public var month: UsageTotals
    public init(day: UsageTotals, month: UsageTotals) {
        self.day = day
        self.month = month
    }
}

/// What `tollgate usage` groups rows by.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case user, model, key, day
}

/// One line of `tollgate usage`: a group (nil: rows without a user, model or key) and its totals.
public struct UsageReportLine: Sendable, Equatable {
    public var group: String?
    public var requests: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var tokens: Int
    /// Requests answered with a status of 400 or more.
    public var errors: Int
    public var averageMillis: Double
}
