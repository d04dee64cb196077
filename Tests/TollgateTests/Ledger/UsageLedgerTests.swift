import Foundation
import Synchronization
import Testing
@testable import Tollgate
import TollgateIO
import TollgateTestSupport

/// A settable wall clock (Unix ms) for the ledger.
final class LedgerClock: Sendable {
    private let value: Mutex<Int64>
    init(_ millis: Int64) { value = Mutex(millis) }
    func set(_ millis: Int64) { value.withLock { $0 = millis } }
    var now: @Sendable () -> Int64 { { [self] in value.withLock { $0 } } }
}

func ledgerRow(_ n: Int, time: Int64, user: String? = "alice", key: String? = nil, model: String? = "mistral",
               prompt: Int? = 10, completion: Int? = 5) -> UsageRow {
    UsageRow(time: time, requestID: "req-\(n)", user: user, keyID: key, model: model, route: "/api/chat",
             status: 200, promptTokens: prompt, completionTokens: completion, durationMicros: 1500,
             ttfbMicros: 700, backend: nil)
}

/// The ledger's writer thread: rows arrive in batches, a database that cannot be written drops and counts rows
/// without blocking and recovers, retention deletes only old rows, and a restart reads the same balances back.
@Suite struct UsageLedgerTests {
    // 2026-03-15 12:00:00 UTC
    static let noon: Int64 = 1_773_576_000_000

    @Test func rowsArriveWithEveryFieldAndAreCountedAsWritten() throws {
        let dir = try makeTemporaryDirectory()
        let path = StateDatabase.path(in: dir + "/state")
        let clock = LedgerClock(Self.noon)
        var settings = UsageLedger.Settings(path: path, retentionSeconds: nil)
        settings.clock = clock.now
        let ledger = try UsageLedger(settings: settings)
        for i in 0..<500 { ledger.record(ledgerRow(i, time: Self.noon, key: i % 2 == 0 ? "k1" : nil)) }
        var odd = ledgerRow(500, time: Self.noon + 1, user: nil, model: nil, prompt: nil, completion: nil)
        odd.ttfbMicros = nil
        odd.backend = "10.0.0.5:11434"
        ledger.record(odd)
        ledger.sync()
        #expect(ledger.written == 501)
        #expect(ledger.dropped.values.allSatisfy { $0 == 0 })
        #expect(ledger.metricsText().contains("tollgate_ledger_rows_written_total 501\n"))
        #expect(ledger.metricsText().contains("tollgate_ledger_rows_dropped_total{reason=\"busy\"} 0\n"))
        ledger.stop()
        let store = try UsageStore(reading: path)
        let rows = try store.rows()
        #expect(rows.count == 501)
        #expect(rows.first == ledgerRow(0, time: Self.noon, key: "k1"))
        #expect(rows.last == odd)
        #expect(try store.tokensByKey() == ["k1": 250 * 15])
    }

    /// A model name is whatever the client sent: the ledger keeps its first 256 bytes, cut before a character that
    /// would not fit whole, through both the grouped insert and the one-by-one insert.
    @Test func longModelNamesAreCutToWholeCharacters() throws {
        #expect(UsageRow.storedModel("mistral:7b") == "mistral:7b")
        let exact = String(repeating: "m", count: UsageRow.maxModelBytes)
        #expect(UsageRow.storedModel(exact) == exact)
        #expect(UsageRow.storedModel(exact + "x") == exact)
        // 255 ASCII bytes then a 4-byte scalar: it does not fit, and is not cut in half.
        let straddling = String(repeating: "a", count: UsageRow.maxModelBytes - 1) + "😀" + "tail"
        #expect(UsageRow.storedModel(straddling) == String(repeating: "a", count: UsageRow.maxModelBytes - 1))
        let wide = String(repeating: "é", count: 1000)   // 2 bytes each
        #expect(UsageRow.storedModel(wide) == String(repeating: "é", count: UsageRow.maxModelBytes / 2))
        // A NUL would end the name for SQLite's text functions: two names would read as one.
        #expect(UsageRow.storedModel("nul\u{0}A") == "nul\u{FFFD}A")
        #expect(UsageRow.storedModel(String(repeating: "\u{0}", count: 300)).utf8.count <= UsageRow.maxModelBytes)

        let path = StateDatabase.path(in: try makeTemporaryDirectory())
        let store = try UsageStore(writing: path)
        let long = String(repeating: "z", count: 10_000)
        // 17 rows: a group of 16 and one alone.
        try store.insert((0..<17).map { ledgerRow($0, time: Self.noon, model: long + "\($0)") })
        let models = try UsageStore(reading: path).rows().map(\.model)
        #expect(models.count == 17)
        #expect(models.allSatisfy { $0 == String(repeating: "z", count: UsageRow.maxModelBytes) })
    }

    @Test func aLockedDatabaseDropsAndCountsRowsThenRecovers() throws {
        let dir = try makeTemporaryDirectory()
        let path = StateDatabase.path(in: dir)
        _ = try UsageStore(writing: path)   // the schema exists
        var settings = UsageLedger.Settings(path: path, retentionSeconds: nil)
        settings.busyTimeoutMillis = 0
        settings.retryMillis = 0
        let ledger = try UsageLedger(settings: settings)
        defer { ledger.stop() }
        ledger.record(ledgerRow(0, time: Self.noon))
        ledger.sync()
        #expect(ledger.written == 1)

        // Another process takes the write lock and keeps it.
        let other = try SQLiteDatabase(path: path, mode: .readWrite)
        try other.exec("BEGIN IMMEDIATE")
        for i in 1...3 { ledger.record(ledgerRow(i, time: Self.noon)) }   // returns at once: nothing blocks
        ledger.sync()
        #expect(ledger.dropped["busy"] == 3)
        #expect(ledger.written == 1)
        #expect(ledger.metricsText().contains("tollgate_ledger_rows_dropped_total{reason=\"busy\"} 3\n"))

        try other.exec("COMMIT")
        for i in 4...5 { ledger.record(ledgerRow(i, time: Self.noon)) }
        ledger.sync()
        #expect(ledger.written == 3)
        #expect(try UsageStore(reading: path).rows().map(\.requestID) == ["req-0", "req-4", "req-5"])
    }

    /// The database's files made unwritable mid-run (a disk remounted read-only; here the immutable attribute, which
    /// even root cannot write through): rows are dropped and counted, `record` never blocks, and writing resumes once
    /// the files can be written again.
    @Test(.enabled(if: ImmutableFiles.available, "needs chattr and the right to set the immutable attribute"))
    func aDatabaseMadeReadOnlyMidRunDropsAndCountsRowsThenRecovers() throws {
        let dir = try makeTemporaryDirectory()
        let path = StateDatabase.path(in: dir)
        var settings = UsageLedger.Settings(path: path, retentionSeconds: nil)
        settings.retryMillis = 0
        let ledger = try UsageLedger(settings: settings)
        defer { ledger.stop() }
        ledger.record(ledgerRow(0, time: Self.noon))
        ledger.sync()
        #expect(ledger.written == 1)

        let files = [path, path + "-wal"]
        try ImmutableFiles.set(files, true)
        defer { try? ImmutableFiles.set(files, false) }
        for i in 1...4 { ledger.record(ledgerRow(i, time: Self.noon)) }
        ledger.sync()
        #expect(ledger.written == 1)
        let dropped = ledger.dropped.values.reduce(0, +)
        #expect(dropped == 4)
        #expect(ledger.dropped["queue_full"] == 0 && ledger.dropped["busy"] == 0)

        try ImmutableFiles.set(files, false)
        for i in 5...6 { ledger.record(ledgerRow(i, time: Self.noon)) }
        ledger.sync()
        #expect(ledger.written == 3)
        #expect(try UsageStore(reading: path).rows().map(\.requestID) == ["req-0", "req-5", "req-6"])
    }

    @Test func aDatabaseThatCannotBeOpenedIsRetriedUntilItCan() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/missing/state/tollgate.db"   // its parent's parent does not exist
        var settings = UsageLedger.Settings(path: path, retentionSeconds: nil)
        settings.retryMillis = 0
        let ledger = try UsageLedger(settings: settings)
        defer { ledger.stop() }
        ledger.record(ledgerRow(0, time: Self.noon))
        ledger.sync()
        #expect(ledger.dropped["cantopen"] == 1)
        try FileManager.default.createDirectory(atPath: dir + "/missing", withIntermediateDirectories: true)
        ledger.record(ledgerRow(1, time: Self.noon))
        ledger.sync()
        #expect(ledger.written == 1)
    }

    @Test func startUpSumsOfTheLargestCountsSaturate() throws {
        // A ledger whose counts (as a backend reported them) add up past Int64: the start-up sums stop at the
        // bound instead of failing the start on SQLite's integer overflow.
        let path = StateDatabase.path(in: try makeTemporaryDirectory())
        let store = try UsageStore(writing: path)
        try store.database.exec("""
            WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000)
            INSERT INTO usage (time, request_id, user, route, status, prompt_tokens, completion_tokens, duration_us,
                               charged_tokens, counted_request)
            SELECT 1000 + i, printf('r%d', i), 'alice', '/api/chat', 200, 999999999999999, 999999999999999, 1,
                   1999999999999998, 1 FROM c
            """)
        let reader = try UsageStore(reading: path)
        let charges = try reader.charges(dayStart: 0, monthStart: 0)
        #expect(charges["alice"] == Spending(dayTokens: Int.max, monthTokens: Int.max, dayRequests: 5000))
        let balances = try reader.balances(dayStart: 2000, monthStart: 0)
        #expect(balances["alice"]?.month == UsageTotals(tokens: Int.max, requests: 5000))
        #expect(balances["alice"]?.day.requests == 4001)
    }

    @Test func aRestartReadsTheSameBalancesBack() throws {
        let dir = try makeTemporaryDirectory()
        let path = StateDatabase.path(in: dir)
        let day = UsageClock.dayStart(Self.noon)
        let month = UsageClock.monthStart(Self.noon)
        #expect(month == 1_772_323_200_000)   // 2026-03-01 00:00 UTC
        let settings = UsageLedger.Settings(path: path, retentionSeconds: nil)
        let first = try UsageLedger(settings: settings)
        first.record(ledgerRow(0, time: Self.noon))                                    // today
        first.record(ledgerRow(1, time: day - 1, prompt: 100, completion: 1))          // yesterday, this month
        first.record(ledgerRow(2, time: month - 1, prompt: 1000, completion: 0))       // last month
        first.record(ledgerRow(3, time: Self.noon, user: "bob", prompt: nil, completion: 7))
        first.record(ledgerRow(4, time: Self.noon, user: nil))
        first.stop()   // writes what is queued

        let second = try UsageLedger(settings: settings)
        second.record(ledgerRow(5, time: Self.noon + 1))
        second.stop()
        let balances = try UsageStore(reading: path).balances(dayStart: day, monthStart: month)
        #expect(balances == [
            "alice": UsageBalance(day: UsageTotals(tokens: 30, requests: 2), month: UsageTotals(tokens: 131, requests: 3)),
            "bob": UsageBalance(day: UsageTotals(tokens: 7, requests: 1), month: UsageTotals(tokens: 7, requests: 1)),
        ])
    }

    @Test func retentionDeletesOnlyOldRowsAtStartAndOnceADay() throws {
        let dir = try makeTemporaryDirectory()
        let path = StateDatabase.path(in: dir)
        let day: Int64 = 86_400_000
        let store = try UsageStore(writing: path)
        try store.insert((0..<2500).map { ledgerRow($0, time: Self.noon - 91 * day) }
                         + [ledgerRow(9000, time: Self.noon - 89 * day)])
        let clock = LedgerClock(Self.noon)
        var settings = UsageLedger.Settings(path: path, retentionSeconds: 90 * 86_400)
        settings.clock = clock.now
        let ledger = try UsageLedger(settings: settings)
        defer { ledger.stop() }
        ledger.sync()
        #expect(try store.rows().map(\.requestID) == ["req-9000"])
        // Not yet a day later: nothing more goes.
        clock.set(Self.noon + day / 2)
        ledger.record(ledgerRow(9001, time: Self.noon + day / 2))
        ledger.sync()
        #expect(try store.rows().count == 2)
        // A day later the 89-day-old row has passed 90 days.
        clock.set(Self.noon + day + 1)
        ledger.sync()
        #expect(try store.rows().map(\.requestID) == ["req-9001"])
    }

    @Test func theReportRendersAsTableCSVAndJSON() throws {
        let dir = try makeTemporaryDirectory()
        let path = StateDatabase.path(in: dir)
        let store = try UsageStore(writing: path)
        var failed = ledgerRow(3, time: Self.noon, user: "bob, \"the builder\"", prompt: 1, completion: 1)
        failed.status = 500
        try store.insert([ledgerRow(0, time: Self.noon), ledgerRow(1, time: Self.noon + 1), failed,
                          ledgerRow(4, time: Self.noon - 86_400_000 * 30)])
        let lines = try UsageStore(reading: path).report(since: Self.noon - 86_400_000, by: .user)
        #expect(UsageReport.render(lines, by: .user, format: .table) == """
            user                requests  prompt_tokens  completion_tokens  tokens  errors  avg_ms
            alice                      2             20                 10      30       0       2
            bob, "the builder"         1              1                  1       2       1       2

            """)
        #expect(UsageReport.render(lines, by: .user, format: .csv) == #"""
            user,requests,prompt_tokens,completion_tokens,tokens,errors,avg_ms
            alice,2,20,10,30,0,2
            "bob, ""the builder""",1,1,1,2,1,2

            """#)
        let json = UsageReport.render(lines, by: .user, format: .json)
        #expect(json == #"[{"user":"alice","requests":2,"prompt_tokens":20,"completion_tokens":10,"tokens":30,"errors":0,"avg_ms":2},"#
                + #"{"user":"bob, \"the builder\"","requests":1,"prompt_tokens":1,"completion_tokens":1,"tokens":2,"errors":1,"avg_ms":2}]"# + "\n")
        _ = try JSONSerialization.jsonObject(with: Data(json.utf8))
        let days = try UsageStore(reading: path).report(since: 0, by: .day)
        #expect(days.map(\.group) == ["2026-02-13", "2026-03-15"])
        #expect(try UsageStore(reading: path).report(since: 0, by: .key).map(\.group) == [nil])
    }

    @Test func readingAMissingDatabaseNamesTheFile() throws {
        let dir = try makeTemporaryDirectory()
        let error = #expect(throws: SQLiteError.self) { try UsageStore(reading: dir + "/state/tollgate.db") }
        #expect(error?.description.contains(dir + "/state/tollgate.db") == true)
        // A database the keys created first, with no usage table yet, reads as empty.
        _ = try SQLiteDatabase(path: dir + "/k.db", mode: .readWriteCreate(fileMode: 0o600))
        let empty = try UsageStore(reading: dir + "/k.db")
        #expect(try empty.balances(dayStart: 0, monthStart: 0).isEmpty)
        #expect(try empty.tokensByKey().isEmpty)
        #expect(try empty.report(since: 0, by: .user).isEmpty)
    }
}
