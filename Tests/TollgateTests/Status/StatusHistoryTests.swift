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
        try database(at: StateDatabase.path(in: try makeTemporaryDirectory()), rows)
    }

    static func database(at path: String, _ rows: [UsageRow]) throws -> String {
        let store = try UsageStore(writing: path)
        try store.insert(rows)
        return path
    }

    @Test func dayTotalsGroupByUTCDay() throws {
        let midnight = Self.noon - 12 * 3_600_000
        let path = try Self.database([
            Self.row(1, time: midnight - 1),                        // the day before, its last millisecond
            Self.row(2, time: midnight),
            Self.row(3, time: midnight + 5, status: 429, prompt: nil, completion: nil, ttfb: 100),
            Self.row(4, time: Self.noon, status: 502, prompt: nil, completion: nil, ttfb: nil),
            Self.row(5, time: Self.noon, user: "bob", model: nil, ttfb: 1300),
            Self.row(6, time: midnight - 40 * Self.day),             // before `since`
            Self.row(7, time: midnight + Self.day),                  // from `until` on
        ])
        let store = try UsageStore(reading: path)
        #expect(try store.dayTotals(since: midnight - 29 * Self.day, until: midnight + Self.day) == [
            UsageDayTotals(day: 20_526, requests: 1, tokens: 15, ttfbMicrosSum: 700, ttfbCount: 1),
            UsageDayTotals(day: 20_527, requests: 4, clientErrors: 1, serverErrors: 1, tokens: 30,
                           ttfbMicrosSum: 2000, ttfbCount: 2),
        ])
        #expect(try store.dayTokens(by: .user, since: midnight - 29 * Self.day, until: midnight + Self.day, top: 8) == [
            UsageDayTokens(day: 20_526, name: "alice", tokens: 15),
            UsageDayTokens(day: 20_527, name: "alice", tokens: 15),
            UsageDayTokens(day: 20_527, name: "bob", tokens: 15),
        ])
        #expect(try store.dayTokens(by: .model, since: midnight - 29 * Self.day, until: midnight + Self.day, top: 8) == [
            UsageDayTokens(day: 20_526, name: "mistral", tokens: 15),
            UsageDayTokens(day: 20_527, name: nil, tokens: 15),
            UsageDayTokens(day: 20_527, name: "mistral", tokens: 15),
        ])
    }

    @Test func dayTokensKeepTheTopNamesRankedInSQL() throws {
        // Tokens: carl 40 (with the rows without a user), nil 30, alice 20, bob 20 (ties by name), dave 0.
        let path = try Self.database([
            Self.row(1, time: Self.noon, user: "carl", prompt: 30, completion: 0),
            Self.row(2, time: Self.noon - Self.day, user: "carl", prompt: 10, completion: 0),
            Self.row(3, time: Self.noon, user: nil, prompt: 30, completion: 0),
            Self.row(4, time: Self.noon, user: "bob", prompt: 20, completion: 0),
            Self.row(5, time: Self.noon, user: "alice", prompt: 20, completion: 0),
            Self.row(6, time: Self.noon, user: "dave", prompt: 0, completion: 0),
        ])
        let store = try UsageStore(reading: path)
        func names(_ top: Int) throws -> Set<String?> {
            Set(try store.dayTokens(by: .user, since: 0, until: Self.noon + Self.day, top: top).map(\.name))
        }
        #expect(try names(1) == ["carl"])
        #expect(try names(2) == ["carl", nil], "a group without a user ranks like any other")
        #expect(try names(3) == ["carl", nil, "alice"])
        #expect(try names(10) == ["carl", nil, "alice", "bob"], "no tokens, no series")
        #expect(try store.dayTokens(by: .user, since: 0, until: Self.noon + Self.day, top: 1).count == 2,
                "one line per day of each name")
    }

    @Test func theHistoryHasEveryDayAndRanksNames() {
        let h = StatusHistory(
            firstDay: 100, lastDay: 103,
            days: [UsageDayTotals(day: 99, requests: 9, tokens: 9),          // outside: ignored
                   UsageDayTotals(day: 100, requests: 1, tokens: 10, ttfbMicrosSum: 4000, ttfbCount: 2),
                   UsageDayTotals(day: 103, requests: 4, clientErrors: 1, tokens: 60)],
            users: [UsageDayTokens(day: 99, name: "old", tokens: 9),
                    UsageDayTokens(day: 100, name: "bob", tokens: 10),
                    UsageDayTokens(day: 103, name: "alice", tokens: 30),
                    UsageDayTokens(day: 103, name: nil, tokens: 30),
                    UsageDayTokens(day: 103, name: "carl", tokens: 0)],
            models: [UsageDayTokens(day: 100, name: "m", tokens: 10),
                     UsageDayTokens(day: 103, name: "m", tokens: 30),
                     UsageDayTokens(day: 103, name: "n", tokens: 30)],
            limit: 8)
        #expect(h.days.map(\.day) == [100, 101, 102, 103])
        #expect(h.days.map(\.requests) == [1, 0, 0, 4])
        #expect(h.days[0].meanTTFBMillis == 2)
        #expect(h.days[1].meanTTFBMillis == nil)
        #expect(h.tokensByUser.map(\.name) == ["alice", nil, "bob"], "ties by name, the unnamed after; no zero rows")
        #expect(h.tokensByUser[2].values == [10, 0, 0, 0])
        #expect(h.tokensByUser.allSatisfy { !$0.isRest }, "the names hold every token: no others")
        #expect(h.tokensByModel.map(\.name) == ["m", "n"])
        #expect(h.tokensByModel.map(\.total) == [40, 30])
        #expect(!h.isEmpty)
        #expect(StatusHistory(firstDay: 1, lastDay: 30, days: [], users: [], models: [], limit: 8).isEmpty)
    }

    @Test func tokensBeyondTheTopNamesAreTheOthers() {
        let days = [UsageDayTotals(day: 10, requests: 5, tokens: 100), UsageDayTotals(day: 11, requests: 1, tokens: 7)]
        let three = [UsageDayTokens(day: 10, name: "a", tokens: 50), UsageDayTokens(day: 10, name: "b", tokens: 30),
                     UsageDayTokens(day: 11, name: "c", tokens: 5)]
        // The query's limit of 3 names was reached and 22 tokens are in none: "c" joins the others.
        let h = StatusHistory(firstDay: 10, lastDay: 11, days: days, users: three, models: three, limit: 3)
        #expect(h.tokensByUser.map(\.name) == ["a", "b", nil])
        #expect(h.tokensByUser[2].isRest && h.tokensByUser[2].values == [20, 7])
        // Every token in the names read: all of them are shown, up to the limit.
        let all = StatusHistory(firstDay: 10, lastDay: 11, days: [UsageDayTotals(day: 10, requests: 2, tokens: 80),
                                                                  UsageDayTotals(day: 11, requests: 1, tokens: 5)],
                                users: three, models: three, limit: 3)
        #expect(all.tokensByModel.map(\.name) == ["a", "b", "c"])
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

    @Test func aSlowQuerysAnswerIsReusedForLongerThanItTook() throws {
        let path = try Self.database([Self.row(1, time: Self.noon)])
        // Every reading of the clock moves it on by `step`: the query (read before and after) takes 20 s.
        let clock = Mutex((now: Self.noon, step: Int64(20_000)))
        var settings = StatusHistoryReader.Settings(path: path)
        settings.clock = { clock.withLock { c in defer { c.now += c.step }; return c.now } }
        let reader = StatusHistoryReader(settings: settings)
        defer { reader.stop() }
        _ = try Self.history(reader)
        _ = try Self.history(reader)
        #expect(reader.queries == 1, "asked again 40 s after a 20 s query began: still fresh (5 times 20 s)")
        clock.withLock { $0 = (Self.noon + 20_000 + 100_000 + 1, 0) }
        _ = try Self.history(reader)
        #expect(reader.queries == 2, "past five times the query's time: read again")
    }

    @Test func aLedgerOfManyLongNamesGivesABoundedPage() throws {
        // Written around the ledger's writer, as a ledger from before names were cut (or another program) holds
        // them: 3000 distinct model names of 1000 characters over 30 days, and 300 users.
        let path = try Self.database([])
        let writer = try UsageStore(writing: path)
        try writer.database.exec("""
            WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
            INSERT INTO usage (time, request_id, user, model, route, status, prompt_tokens, completion_tokens,
                               duration_us, ttfb_us)
            SELECT \(Self.noon) - (i % 30) * 86400000, printf('r%d', i), printf('u%d', i % 300),
                   printf('%04d', i) || substr(hex(zeroblob(500)), 1, 996) || '<b>', '/api/generate', 200, 5, i, 100, 100
            FROM c
            """)
        let store = try UsageStore(reading: path)
        let lines = try store.dayTokens(by: .model, since: 0, until: Self.noon + Self.day, top: 8)
        #expect(Set(lines.map(\.name)).count == 8 && lines.count <= 8 * 30)
        #expect(lines.allSatisfy { ($0.name?.count ?? 0) == UsageStore.pageNameLength })
        #expect(try store.dayTotals(since: 0, until: Self.noon + Self.day).count == 30)

        var settings = StatusHistoryReader.Settings(path: path)
        settings.clock = { Self.noon }
        let reader = StatusHistoryReader(settings: settings)
        defer { reader.stop() }
        let h = try Self.history(reader)
        for series in [h.tokensByModel, h.tokensByUser] {
            #expect(series.count == StatusPageRenderer.seriesShown)
            #expect(series.last?.isRest == true)
            #expect(series.map(\.total).reduce(0, +) == h.days.map(\.tokens).reduce(0, +), "the others hold the rest")
        }
        #expect(h.tokensByModel.first?.name == "3000" + String(repeating: "0", count: 252),
                "the most tokens, cut to the page's length")
        let page = StatusPageRenderer.render(now: StatusNow(time: Self.noon, upstreamUp: true), history: .answer(.history(h)))
        let legends = page.components(separatedBy: "<ul class=\"legend\">").dropFirst()
            .map { $0.components(separatedBy: "</ul>")[0] }
        #expect(legends.count == 3, "requests, then users and models")
        for legend in legends.suffix(2) {
            #expect(legend.components(separatedBy: "<li>").count - 1 <= StatusPageRenderer.seriesShown)
        }
        #expect(page.contains("3000" + String(repeating: "0", count: 116) + "…"), "shown names cut further")
        #expect(!page.contains("<b>"))
        #expect(page.utf8.count < 200_000)
    }

    @Test func namesWithoutTokensNeverRankAndSumsSaturate() throws {
        // What one user can write: 2000 distinct made-up model names that Ollama refused (no tokens), beside the
        // real ones; and rows whose counts (as a backend reported them) add up past Int64.
        let path = try Self.database([])
        let writer = try UsageStore(writing: path)
        try writer.database.exec("""
            WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)
            INSERT INTO usage (time, request_id, user, model, route, status, duration_us)
            SELECT \(Self.noon) - (i % 30) * 86400000, printf('r%d', i), 'bob', printf('made-up-%d', i),
                   '/api/generate', 404, 100 FROM c;
            WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 40)
            INSERT INTO usage (time, request_id, user, model, route, status, prompt_tokens, completion_tokens,
                               duration_us, ttfb_us)
            SELECT \(Self.noon), printf('h%d', i), 'carl', 'huge', '/api/generate', 200, 999999999999999999,
                   999999999999999999, 100, 9223372036854775807 FROM c;
            """)
        let store = try UsageStore(reading: path)
        let models = try store.dayTokens(by: .model, since: 0, until: Self.noon + Self.day, top: 8)
        #expect(models.map(\.name) == ["huge"], "no made-up name ranks: \(models.prefix(3))")
        #expect(models.first?.tokens == Int.max)
        let days = try store.dayTotals(since: 0, until: Self.noon + Self.day)
        #expect(days.count == 30 && days.map(\.requests).reduce(0, +) == 2040)
        #expect(days.last?.tokens == Int.max && days.last?.ttfbMicrosSum == Int64.max && days.last?.ttfbCount == 40)
        var settings = StatusHistoryReader.Settings(path: path)
        settings.clock = { Self.noon }
        let reader = StatusHistoryReader(settings: settings)
        defer { reader.stop() }
        let h = try Self.history(reader)
        #expect(h.tokensByModel.map(\.name) == ["huge"] && h.tokensByUser.map(\.name) == ["carl"])
    }

    @Test func theRankingTalliesABoundedNumberOfNamesAndKeepsTheLargest() throws {
        // More names with tokens than are tallied (one user's spellings of a model, each with a few tokens), and
        // after them, the names that carry the traffic: they are named on the page, the small ones are the others.
        let path = try Self.database([])
        let writer = try UsageStore(writing: path)
        let count = UsageStore.pageNamesTallied + 50
        try writer.database.exec("""
            WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < \(count))
            INSERT INTO usage (time, request_id, user, model, route, status, prompt_tokens, completion_tokens,
                               duration_us)
            SELECT \(Self.noon), printf('r%d', i), 'bob', printf('m%06d', i), '/api/generate', 200, 1,
                   CASE WHEN i > \(count - 5) THEN 1000 ELSE 0 END, 100 FROM c
            """)
        var settings = StatusHistoryReader.Settings(path: path)
        settings.clock = { Self.noon }
        let reader = StatusHistoryReader(settings: settings)
        defer { reader.stop() }
        let h = try Self.history(reader)
        #expect(h.tokensByModel.count == StatusPageRenderer.seriesShown)
        #expect(Array(h.tokensByModel.prefix(5).map(\.name)) == (count - 4...count).map { String(format: "m%06d", $0) })
        #expect(h.tokensByModel.prefix(5).allSatisfy { $0.total == 1001 })
        #expect(h.tokensByModel.last?.isRest == true)
        #expect(h.tokensByModel.map(\.total).reduce(0, +) == count + 5 * 1000, "every token is drawn")
    }

    @Test func aPageOfTheLargestCountsRenders() throws {
        // Counts as large as a backend can report, summed past Int64, then drawn: the page clamps, never traps.
        let history = StatusHistory(
            firstDay: 100, lastDay: 102,
            days: [UsageDayTotals(day: 100, requests: 3, tokens: Int.max, ttfbMicrosSum: Int64.max, ttfbCount: 2),
                   UsageDayTotals(day: 101, requests: 1, tokens: Int.max),
                   UsageDayTotals(day: 101, requests: 1, tokens: Int.max),
                   UsageDayTotals(day: 102, requests: 1, tokens: Int.min)],
            users: [UsageDayTokens(day: 100, name: "a", tokens: Int.max),
                    UsageDayTokens(day: 101, name: "a", tokens: Int.max),
                    UsageDayTokens(day: 100, name: "b", tokens: Int.max),
                    UsageDayTokens(day: 102, name: "c", tokens: Int.min)],
            models: (0..<12).map { UsageDayTokens(day: 100 + Int64($0 % 3), name: "m\($0)", tokens: Int.max) },
            limit: 8)
        #expect(history.days.map(\.tokens) == [Int.max, Int.max, Int.min])
        #expect(history.tokensByUser.first?.total == Int.max)
        let quota = StatusNow.QuotaUse(user: "a", spent: Spending(dayTokens: Int.max, monthTokens: Int.max, dayRequests: 1),
                                       limits: QuotaLimits(tokensPerDay: 10, tokensPerMonth: 10))
        var now = StatusNow(time: Self.noon, upstreamUp: true)
        now.quotas = [quota]
        let page = StatusPageRenderer.render(now: now, history: .answer(.history(history)))
        #expect(page.contains("9,223,372,036,854,775,807 tokens"))
        #expect(page.hasSuffix("</html>\n"))
    }

    @Test func aFailureIsReusedLikeAnAnswer() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/tollgate.db"
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        let clock = Mutex(Self.noon)
        var settings = StatusHistoryReader.Settings(path: path)
        settings.clock = { clock.withLock { $0 } }
        let reader = StatusHistoryReader(settings: settings)
        defer { reader.stop() }
        for _ in 0..<3 {
            guard case .unavailable(let why) = Self.answer(reader) else { Issue.record("read a file that is no database"); return }
            #expect(why.contains("the usage ledger cannot be read"), "\(why)")
        }
        #expect(reader.queries == 1, "a failing ledger is not read again for every request")
        // Once it may be read again, a repaired ledger is.
        try FileManager.default.removeItem(atPath: path)
        _ = try Self.database(at: path, [Self.row(1, time: Self.noon)])
        clock.withLock { $0 += 6000 }
        #expect(try Self.history(reader).days.last?.requests == 1)
        #expect(reader.queries == 2)
    }

    @Test func aReplacedLedgerIsReadFromTheNewFile() throws {
        let path = try Self.database([Self.row(1, time: Self.noon)])
        let clock = Mutex(Self.noon)
        var settings = StatusHistoryReader.Settings(path: path)
        settings.clock = { clock.withLock { $0 } }
        let reader = StatusHistoryReader(settings: settings)
        defer { reader.stop() }
        #expect(try Self.history(reader).days.last?.requests == 1)
        // A restored backup renamed over the ledger: the open connection would go on reading the old file.
        let other = try Self.database([Self.row(1, time: Self.noon), Self.row(2, time: Self.noon),
                                       Self.row(3, time: Self.noon)])
        #expect(rename(other, path) == 0)
        clock.withLock { $0 += 6000 }
        #expect(try Self.history(reader).days.last?.requests == 3)
    }

    @Test func anonymousRequestsCannotFillTheAdministratorsQueue() throws {
        let path = try Self.database([Self.row(1, time: Self.noon)])
        var settings = StatusHistoryReader.Settings(path: path)
        settings.clock = { Self.noon }
        settings.maxPending = 2
        let reader = StatusHistoryReader(settings: settings)
        defer { reader.stop() }
        // The reader's thread is held in a completion while requests queue behind it.
        let gate = ConditionLock()
        let held = Mutex(false), release = Mutex(false)
        reader.read { _ in
            held.withLock { $0 = true }
            gate.broadcast()
            _ = gate.wait(until: .max) { release.withLock { $0 } }
        }
        _ = gate.wait(until: .max) { held.withLock { $0 } }
        let answers = Mutex<[String]>([])
        let done = ConditionLock()
        func ask(_ origin: StatusHistoryReader.Origin, _ tag: String) {
            reader.read(from: origin) { answer in
                let what: String
                switch answer {
                case .history: what = "history"
                case .unavailable(let why): what = why
                }
                answers.withLock { $0.append("\(tag): \(what)") }
                done.broadcast()
            }
        }
        for i in 0..<3 { ask(.metricsListener, "anonymous \(i)") }
        #expect(answers.withLock { $0 } == ["anonymous 2: too many status pages are being prepared"])
        ask(.administrator, "admin")
        #expect(answers.withLock { $0.count } == 1, "the administrator waits in a queue of their own")
        release.withLock { $0 = true }
        gate.broadcast()
        _ = done.wait(until: .max) { answers.withLock { $0.count } == 4 }
        #expect(answers.withLock { $0 }.contains("admin: history"))
    }

    @Test func theLedgerIsIndexedOnTimeNotOnUserAndTime() throws {
        // A ledger of an earlier release: its index on (user, time) is replaced at the first open for writing.
        let path = try Self.database([])
        let old = try UsageStore(writing: path)
        try old.database.exec("DROP INDEX usage_time; CREATE INDEX usage_user_time ON usage (user, time)")
        old.database.close()
        let store = try UsageStore(writing: path)
        let query = try store.database.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage'")
        var names: Set<String> = []
        while try query.step() { names.insert(query.text(0) ?? "") }
        query.reset()
        #expect(names == ["usage_time", "usage_key"])
        let plan = try store.database.prepare("""
            EXPLAIN QUERY PLAN SELECT count(*) FROM usage WHERE time >= 1 AND time < 2
            """)
        var detail = ""
        while try plan.step() { detail += plan.text(3) ?? "" }
        plan.reset()
        #expect(detail.contains("USING COVERING INDEX usage_time"), "\(detail)")
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
