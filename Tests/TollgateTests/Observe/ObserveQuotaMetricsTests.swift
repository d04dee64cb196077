import Testing
@testable import Tollgate

/// The quota gauges: a series per quota a user's effective policy sets, for users with a line of their own or who
/// spent; nothing for users without a limit, and no families at all when no policy sets a quota.
@Suite struct ObserveQuotaMetricsTests {
    /// 2026-12-04 23:00:00 UTC.
    static let lateEvening: Int64 = 1_796_425_200

    private func table(_ lines: [String]) throws -> PolicyTable {
        try ServerConfig(resolved: ConfigResolver.resolve(flags: ["policy": lines], environment: [:], file: nil),
                         cores: 1).policies
    }

    private func spend(_ book: QuotaBook, _ user: String, _ tokens: Int) {
        guard case .granted(let r) = book.reserve(user: user, limits: QuotaLimits(),
                                                  estimate: QuotaEstimate(promptTokens: 10, generates: true, maxPredict: nil))
        else { Issue.record("refused"); return }
        book.settle(r, .counted(tokens))
    }

    @Test func seriesOnlyForQuotasAPolicySets() throws {
        let book = QuotaBook(clock: { Self.lateEvening })
        spend(book, "alice", 120)
        spend(book, "alice", 30)
        spend(book, "carol", 7)
        let text = QuotaMetrics.text(book: book, policies: try table([
            "* tokens-per-day=1000", "bob requests-per-day=5 tokens-per-month=9000", "carol tokens-per-day=off"]))
        let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        #expect(samples == [
            #"tollgate_quota_used{user="alice",quota="tokens-day"} 150"#,
            #"tollgate_quota_used{user="bob",quota="tokens-day"} 0"#,
            #"tollgate_quota_used{user="bob",quota="tokens-month"} 0"#,
            #"tollgate_quota_used{user="bob",quota="requests-day"} 0"#,
            #"tollgate_quota_limit{user="alice",quota="tokens-day"} 1000"#,
            #"tollgate_quota_limit{user="bob",quota="tokens-day"} 1000"#,
            #"tollgate_quota_limit{user="bob",quota="tokens-month"} 9000"#,
            #"tollgate_quota_limit{user="bob",quota="requests-day"} 5"#,
        ], "\(text)")
        #expect(text.contains("# TYPE tollgate_quota_used gauge\n") && text.contains("# TYPE tollgate_quota_limit gauge\n"))
    }

    @Test func nothingWithoutAQuota() throws {
        let book = QuotaBook(clock: { Self.lateEvening })
        spend(book, "alice", 10)
        #expect(QuotaMetrics.text(book: book, policies: try table(["* max-predict=100"])) == "")
        #expect(QuotaMetrics.text(book: book, policies: PolicyTable()) == "")
    }

    @Test func aNewDayStartsFromZero() throws {
        let clock = LimitsQuotaBookTests.Clock(Self.lateEvening)
        let book = QuotaBook(clock: clock.read)
        spend(book, "alice", 40)
        clock.set(Self.lateEvening + 3_600)
        let text = QuotaMetrics.text(book: book, policies: try table(["alice tokens-per-day=100 tokens-per-month=500"]))
        #expect(text.contains(#"tollgate_quota_used{user="alice",quota="tokens-day"} 0"#), "\(text)")
        #expect(text.contains(#"tollgate_quota_used{user="alice",quota="tokens-month"} 40"#), "\(text)")
    }
}
