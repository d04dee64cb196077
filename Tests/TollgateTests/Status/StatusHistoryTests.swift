import Foundation
import Synchronization
import Testing
@testable import Tollgate
import TollgateIO
import TollgateTestSupport

/// The status page's history: the ledger's rows grouped by UTC day, user and model (`UsageStore.daily`), laid out
/// over the last 30 days (`StatusHistory`), and read on the reader's thread (`StatusHistoryReader`), shared by
/// requests that arrive together, cached for a moment, and answering a missing database plainly.
@Suite struct StatusHistoryTests {
    // 2026-03-15 12:00:00 UTC: day 20527.
    static let noon: Int64 = 1_773_576_000_000
    static let day: Int64 = 86_400_000

    static func row(_ n: Int, time: Int64, user: String? = "alice", model: String? = "mistral", status: Int = 200,
                    prompt: Int? = 10, completion: Int? = 5, ttfb: Int64? = 700) -> UsageRow {
        UsageRow(time: time, requestID: "r\(n)", user: user, keyID: nil, model: model, route: "/api/chat",
                 status: status, promptTokens: prompt, completionTokens: completion, durationMicros: 1500,
                 ttfbMicros: ttfb, backend: nil)
    }

    static func database(_ rows: [UsageRow]) throws -> String {
        let path = StateDatabase.path(in: try makeTemporaryDirectory())
        let store = try UsageStore(writing: path)
        try store.insert(rows)
        return path
    }

    @Test func dailyGroupsByUTCDayUserAndModel() throws {
        let midnight = Self.noon - 12 * 3_600_000
        let path = try Self.database([
            Self.row(1, time: midnight - 1),                        // the day before, its last millisecond
            Self.row(2, time: midnight),
            Self.row(3, time: midnight + 5, status: 429, prompt: nil, completion: nil, ttfb: 100),
            Self.row(4, time: Self.noon, status: 502, prompt: nil, completion: nil, ttfb: nil),
            Self.row(5, time: Self.noon, user: "bob", model: nil, ttfb: 1300),
            Self.row(6, time: midnight - 40 * Self.day),             // before `since`
        ])
        let lines = try UsageStore(reading: path).daily(since: midnight - 29 * Self.day)
        #expect(lines == [
            UsageDailyLine(day: 20_526, user: "alice", model: "mistral", requests: 1, tokens: 15, ttfbMicrosSum: 700,
                           ttfbCount: 1),
            UsageDailyLine(day: 20_527, user: "alice", model: "mistral", requests: 3, clientErrors: 1, serverErrors: 1,
                           tokens: 15, ttfbMicrosSum: 700, ttfbCount: 1),
            UsageDailyLine(day: 20_527, user: "bob", model: nil, requests: 1, tokens: 15, ttfbMicrosSum: 1300,
                           ttfbCount: 1),
        ].sorted { ($0.day, $0.user ?? "") < ($1.day, $1.user ?? "") })
    }

    @Test func aDatabaseWithoutTheTableReadsAsEmpty() throws {
        let path = StateDatabase.path(in: try makeTemporaryDirectory())
        let db = try StateDatabase.openForWriting(path, busyTimeoutMillis: 100)
        try db.exec("CREATE TABLE other (x INTEGER)")
        #expect(try UsageStore(reading: path).daily(since: 0).isEmpty)
    }

    @Test func theHistoryHasEveryDayAndRanksNames() {
        let h = StatusHistory(firstDay: 100, lastDay: 103, lines: [
            UsageDailyLine(day: 99, user: "old", model: "m", requests: 9, tokens: 9),      // outside: ignored
            UsageDailyLine(day: 100, user: "bob", model: "m", requests: 1, tokens: 10, ttfbMicrosSum: 4000, ttfbCount: 2),
            UsageDailyLine(day: 103, user: "alice", model: "m", requests: 2, clientErrors: 1, tokens: 30),
            UsageDailyLine(day: 103, user: nil, model: "n", requests: 1, tokens: 30),
            UsageDailyLine(day: 103, user: "carl", model: "n", requests: 1, tokens: 0),
        ])
        #expect(h.days.map(\.day) == [100, 101, 102, 103])
        #expect(h.days.map(\.requests) == [1, 0, 0, 4])
        #expect(h.days[0].meanTTFBMillis == 2)
        #expect(h.days[1].meanTTFBMillis == nil)
        #expect(h.tokensByUser.map(\.name) == ["alice", nil, "bob"], "ties by name, the unnamed after; no zero rows")
        #expect(h.tokensByUser[2].values == [10, 0, 0, 0])
        #expect(h.tokensByModel.map(\.name) == ["m", "n"])
        #expect(h.tokensByModel.map(\.total) == [40, 30])
        #expect(!h.isEmpty)
        #expect(StatusHistory(firstDay: 1, lastDay: 30, lines: []).isEmpty)
    }

    @Test func topSumsTheRest() {
        let series = (0..<10).map { StatusHistory.Series(name: "u\($0)", values: [10 - $0, 1]) }
        let top = StatusHistory.top(series, limit: 4)
        #expect(top.map(\.name) == ["u0", "u1", "u2", nil])
        #expect(top[3].isRest && top[3].values == [7 + 6 + 5 + 4 + 3 + 2 + 1, 7])
        #expect(StatusHistory.top(Array(series.prefix(4)), limit: 4).count == 4)
    }

    @Test func theReaderAnswersFromTheDatabaseAndCaches() throws {
        let path = try Self.database([Self.row(1, time: Self.noon), Self.row(2, time: Self.noon - 31 * Self.day)])
        let clock = Mutex(Self.noon)
        var settings = StatusHistoryReader.Settings(path: path)
        settings.clock = { clock.withLock { $0 } }
        let reader = StatusHistoryReader(settings: settings)
        defer { reader.stop() }
        let first = try Self.history(reader)
        #expect(first.firstDay == 20_527 - 29 && first.lastDay == 20_527)
        #expect(first.days.last?.requests == 1 && first.days.map(\.requests).reduce(0, +) == 1)
        _ = try Self.history(reader)
        #expect(reader.queries == 1, "a second page within the freshness reuses the answer")
        clock.withLock { $0 += 6000 }
        _ = try Self.history(reader)
        #expect(reader.queries == 2)
    }

    @Test func aMissingDatabaseIsAnAnswerNotAFailure() throws {
        let dir = try makeTemporaryDirectory()
        let reader = StatusHistoryReader(settings: .init(path: dir + "/none/state.db"))
        let answer = Self.answer(reader)
        guard case .unavailable(let why) = answer else {
            Issue.record("expected unavailable, got \(answer)")
            return
        }
        #expect(why.contains("the usage ledger cannot be read"))
        reader.stop()
        guard case .unavailable(let stopping) = Self.answer(reader) else { Issue.record("answered after stop"); return }
        #expect(stopping == "the server is stopping")
    }

    @Test func aStoppedReaderThatNeverRanStopsAtOnce() {
        StatusHistoryReader(settings: .init(path: "/nonexistent/state.db")).stop()
    }

    // MARK: helpers

    /// The reader's answer to one request, waited for on this (test) thread.
    static func answer(_ reader: StatusHistoryReader) -> StatusHistoryReader.Answer {
        let done = ConditionLock()
        let box = Mutex<StatusHistoryReader.Answer?>(nil)
        reader.read { answer in
            box.withLock { $0 = answer }
            done.withLock {}
            done.broadcast()
        }
        _ = done.wait(until: .max) { box.withLock { $0 != nil } }
        return box.withLock { $0! }
    }

    static func history(_ reader: StatusHistoryReader, sourceLocation: SourceLocation = #_sourceLocation) throws -> StatusHistory {
        switch answer(reader) {
        case .history(let h): return h
        case .unavailable(let why):
            Issue.record("unavailable: \(why)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
    }
}
