import Dispatch
import Synchronization
import Testing
@testable import Tollgate

/// Token and request quotas with an injected clock: reservations never overshoot, settlement releases, windows
/// reset at UTC midnight and the first of the month, Retry-After is exact, and a restart is seeded from history.
@Suite struct LimitsQuotaBookTests {
    /// A settable Unix-seconds clock.
    final class Clock: Sendable {
        let seconds: Mutex<Int64>
        init(_ s: Int64) { seconds = Mutex(s) }
        func set(_ s: Int64) { seconds.withLock { $0 = s } }
        var read: @Sendable () -> Int64 { { self.seconds.withLock { $0 } } }
    }

    /// 2026-12-04 23:00:00 UTC.
    static let lateEvening: Int64 = 1_796_425_200

    static func chat(_ prompt: Int, maxPredict: Int? = nil) -> QuotaEstimate {
        QuotaEstimate(promptTokens: prompt, generates: true, maxPredict: maxPredict)
    }

    @Test func utcWindows() {
        let w = UTCWindows(unixSeconds: Self.lateEvening)
        #expect(w.dayStart == 1_796_342_400)   // 2026-12-04 00:00
        #expect(w.dayEnd == 1_796_428_800)     // 2026-12-05 00:00
        #expect(w.monthStart == 1_796_083_200) // 2026-12-01
        #expect(w.monthEnd == 1_798_761_600)   // 2027-01-01
        let feb = UTCWindows(unixSeconds: 1_709_251_199) // 2024-02-29 23:59:59 (leap year)
        #expect(feb.monthEnd == 1_709_251_200)
        #expect(feb.monthEnd - feb.monthStart == 29 * 86_400)
        #expect(UTCWindows(unixSeconds: 0).monthEnd == 31 * 86_400)
    }

    @Test func theGenerationCapIsWhatIsLeftAfterThePromptEstimate() {
        let clock = Clock(Self.lateEvening)
        let book = QuotaBook(clock: clock.read)
        let limits = QuotaLimits(tokensPerDay: 1000)
        guard case .granted(let r) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(300)) else {
            Issue.record("refused")
            return
        }
        #expect(r.tokens == 1000 && r.predictCap == 700 && r.capped)
        // Everything is held: the next request waits for it (Retry-After 1), it is not told to wait for midnight.
        guard case .refused(let held) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(10)) else {
            Issue.record("granted")
            return
        }
        #expect(held.heldByRequestsInFlight && held.retryAfterSeconds == 1 && held.window == .tokensPerDay)
        // Ollama counted 120: the rest is released.
        book.settle(r, .counted(120))
        #expect(book.balance(of: "alice") == (120, 120, 1, 0))
        guard case .granted(let r2) = book.reserve(user: "alice", limits: limits,
                                                   estimate: Self.chat(100, maxPredict: 50)) else {
            Issue.record("refused")
            return
        }
        // max-predict is lower than the quota's cap: not capped by the quota.
        #expect(r2.tokens == 150 && r2.predictCap == 50 && !r2.capped)
        book.settle(r2, .nothing)
        #expect(book.balance(of: "alice") == (120, 120, 1, 0))
    }

    @Test func aSpentQuotaRefusesUntilMidnightWithExactHeaders() {
        let clock = Clock(Self.lateEvening)
        let book = QuotaBook(clock: clock.read)
        let limits = QuotaLimits(tokensPerDay: 500)
        guard case .granted(let r) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(100)) else {
            Issue.record("refused")
            return
        }
        book.settle(r, .counted(500))
        clock.set(Self.lateEvening + 17)
        guard case .refused(let refusal) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(1)) else {
            Issue.record("granted")
            return
        }
        #expect(refusal.retryAfterSeconds == 3600 - 17)
        #expect(!refusal.heldByRequestsInFlight && refusal.needed == nil)
        #expect(refusal.headers.map { "\($0.0): \($0.1)" } == [
            "Retry-After: 3583",
            "RateLimit-Policy: \"tokens-day\";q=500;w=86400",
            "RateLimit: \"tokens-day\";r=0;t=3583",
        ])
        #expect(refusal.message.contains("daily token quota of 500 is spent"))
        // Another user is unaffected.
        #expect(book.reserve(user: "bob", limits: limits, estimate: Self.chat(1)) != .refused(refusal))
        // Midnight UTC: a new day.
        clock.set(Self.lateEvening + 3600)
        guard case .granted = book.reserve(user: "alice", limits: limits, estimate: Self.chat(100)) else {
            Issue.record("refused after midnight")
            return
        }
    }

    @Test func aPromptEstimateOverWhatIsLeftIsRefusedUntilTheBindingWindowResets() {
        let clock = Clock(Self.lateEvening)
        let book = QuotaBook(clock: clock.read)
        let limits = QuotaLimits(tokensPerDay: 10_000, tokensPerMonth: 1000)
        guard case .refused(let refusal) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(1000)) else {
            Issue.record("granted")
            return
        }
        #expect(refusal.window == .tokensPerMonth && refusal.needed == 1001)
        #expect(refusal.retryAfterSeconds == Int(1_798_761_600 - Self.lateEvening))
        #expect(refusal.headers[1].1 == "\"tokens-month\";q=1000;w=\(31 * 86_400)")
        // 999 tokens of prompt leave 1 to generate.
        guard case .granted(let r) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(999)) else {
            Issue.record("refused")
            return
        }
        #expect(r.predictCap == 1)
        // An embedding generates nothing: its estimate is all it holds.
        book.settle(r, .counted(200))
        let embed = QuotaEstimate(promptTokens: 800, generates: false, maxPredict: nil)
        guard case .granted(let e) = book.reserve(user: "alice", limits: limits, estimate: embed) else {
            Issue.record("refused")
            return
        }
        #expect(e.tokens == 800 && e.predictCap == nil)
    }

    @Test func requestsPerDayCountsRequestsInFlight() {
        let clock = Clock(Self.lateEvening)
        let book = QuotaBook(clock: clock.read)
        let limits = QuotaLimits(requestsPerDay: 2)
        var held: [QuotaReservation] = []
        for _ in 0..<2 {
            guard case .granted(let r) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(10)) else {
                Issue.record("refused")
                return
            }
            #expect(r.tokens == 0 && r.predictCap == nil)
            held.append(r)
        }
        guard case .refused(let inFlight) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(10)) else {
            Issue.record("granted")
            return
        }
        #expect(inFlight.heldByRequestsInFlight && inFlight.window == .requestsPerDay)
        // One never reached Ollama: not counted.
        book.settle(held[0], .nothing)
        book.settle(held[1], .reservation)
        guard case .granted(let third) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(10)) else {
            Issue.record("refused")
            return
        }
        book.settle(third, .counted(30))
        guard case .refused(let spent) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(10)) else {
            Issue.record("granted")
            return
        }
        #expect(!spent.heldByRequestsInFlight && spent.retryAfterSeconds == 3600)
        #expect(spent.headers[1].1 == "\"requests-day\";q=2;w=86400")
        #expect(book.balance(of: "alice").dayTokens == 30)
    }

    @Test func aSnapshotIsTakenInTheWindowsItIsAskedFor() {
        // A fleet join reads the clock once and writes the snapshot into that moment's windows: read across
        // midnight, the day's spending must not be yesterday's.
        let book = QuotaBook(clock: Clock(Self.lateEvening).read)
        let through = book.record(user: "alice", .counted(40), reserved: 0)
        #expect(book.spendingSnapshot().spent["alice"] == Spending(dayTokens: 40, monthTokens: 40, dayRequests: 1))
        let (spent, after) = book.spendingSnapshot(at: Self.lateEvening + 3600)
        #expect(spent["alice"] == Spending(dayTokens: 0, monthTokens: 40, dayRequests: 0))
        #expect(after == through)
    }

    @Test func theLargestCountsABackendReportsSaturate() {
        // The usage scanner keeps up to 15 digits per count: a few thousand such answers would pass Int64, on the
        // loop. The balance stops at the bound, and the quota stays refused.
        let book = QuotaBook(clock: Clock(Self.lateEvening).read)
        for _ in 0..<5000 { _ = book.record(user: "alice", .counted(1_999_999_999_999_998), reserved: 0) }
        #expect(book.balance(of: "alice").dayTokens == Int.max)
        guard case .refused = book.reserve(user: "alice", limits: QuotaLimits(tokensPerDay: 100), estimate: Self.chat(1))
        else { Issue.record("granted past a saturated balance"); return }
    }

    @Test func aRequestCutOffIsChargedItsReservation() {
        let book = QuotaBook(clock: Clock(Self.lateEvening).read)
        guard case .granted(let r) = book.reserve(user: "alice", limits: QuotaLimits(tokensPerMonth: 5000),
                                                  estimate: Self.chat(300, maxPredict: 200)) else {
            Issue.record("refused")
            return
        }
        book.settle(r, .reservation)
        #expect(book.balance(of: "alice") == (500, 500, 1, 0))
    }

    @Test func aRequestSettlingAfterMidnightChargesTheNewDayAndHoldsNothingThere() {
        let clock = Clock(Self.lateEvening)
        let book = QuotaBook(clock: clock.read)
        guard case .granted(let r) = book.reserve(user: "alice", limits: QuotaLimits(tokensPerDay: 1000),
                                                  estimate: Self.chat(100)) else {
            Issue.record("refused")
            return
        }
        clock.set(Self.lateEvening + 4000)
        #expect(book.balance(of: "alice") == (0, 0, 0, 0))
        book.settle(r, .counted(40))
        #expect(book.balance(of: "alice") == (40, 40, 1, 0))
    }

    @Test func concurrentReservationsNeverExceedTheQuota() {
        let clock = Clock(Self.lateEvening)
        let book = QuotaBook(clock: clock.read)
        let limits = QuotaLimits(tokensPerDay: 10_000)
        let granted = Mutex<[QuotaReservation]>([])
        // 8 threads × 200 attempts, each holding up to 100 + 150 tokens: far more asked than the quota allows.
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<200 {
                if case .granted(let r) = book.reserve(user: "alice", limits: limits, estimate: Self.chat(100, maxPredict: 150)) {
                    granted.withLock { $0.append(r) }
                }
                #expect(book.balance(of: "alice").held <= 10_000)
            }
        }
        let all = granted.withLock { $0 }
        #expect(all.reduce(0) { $0 + $1.tokens } <= 10_000)
        #expect(all.count == 40)  // 10 000 / 250
        // Settled concurrently, each at its full cap: exactly the quota, nothing held.
        DispatchQueue.concurrentPerform(iterations: all.count) { i in book.settle(all[i], .counted(all[i].tokens)) }
        #expect(book.balance(of: "alice") == (10_000, 10_000, 40, 0))
        guard case .refused = book.reserve(user: "alice", limits: limits, estimate: Self.chat(1)) else {
            Issue.record("granted past the quota")
            return
        }
    }

    /// A `SpendingHistory` stand-in that records what it was asked.
    final class FakeHistory: SpendingHistory {
        let asked = Mutex<[(Int64, Int64)]>([])
        let spending: [String: Spending]
        init(_ spending: [String: Spending]) { self.spending = spending }
        func spent(sinceDay dayStart: Int64, sinceMonth monthStart: Int64) throws -> [String: Spending] {
            asked.withLock { $0.append((dayStart, monthStart)) }
            return spending
        }
    }

    @Test func aRestartIsSeededFromHistory() throws {
        let book = QuotaBook(clock: Clock(Self.lateEvening).read)
        let history = FakeHistory(["alice": Spending(dayTokens: 900, monthTokens: 4000, dayRequests: 3)])
        try book.seed(from: history)
        #expect(history.asked.withLock { $0.map { [$0.0, $0.1] } } == [[1_796_342_400, 1_796_083_200]])
        #expect(book.balance(of: "alice") == (900, 4000, 3, 0))
        guard case .refused(let r) = book.reserve(user: "alice", limits: QuotaLimits(tokensPerDay: 1000),
                                                  estimate: Self.chat(100)) else {
            Issue.record("granted")
            return
        }
        #expect(r.remaining == 100 && r.needed == 101)
        guard case .refused = book.reserve(user: "alice", limits: QuotaLimits(requestsPerDay: 3),
                                           estimate: Self.chat(1)) else {
            Issue.record("granted")
            return
        }
    }
}
