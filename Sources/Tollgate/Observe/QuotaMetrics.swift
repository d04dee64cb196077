/// The quota gauges: `tollgate_quota_used` and `tollgate_quota_limit`, labelled by `user` and `quota`
/// (`tokens-day`, `tokens-month`, `requests-day`, as in the 429's `RateLimit-Policy`), for each user whose
/// effective policy sets that quota, so that an alert can say "alice has spent 90% of her day".
///
/// Cardinality is bounded by the users file: a series exists only for a user with a policy limit who has a line of
/// their own or has made an inference request (the `*` line's limits apply to every user, so each user who spent is
/// listed, and no one else).
enum QuotaMetrics {
    /// The Prometheus text for `book` under `policies`; empty when no policy sets a quota.
    static func text(book: QuotaBook, policies: PolicyTable) -> String {
        guard policies.sets({ $0.quotaLimits != QuotaLimits() }) else { return "" }
        var spent = book.spending()
        for user in policies.lines.keys where spent[user] == nil { spent[user] = Spending() }
        var used = ""
        var limits = ""
        for (user, s) in spent.sorted(by: { $0.key < $1.key }) {
            let q = policies.policy(for: user).quotaLimits
            let rows: [(QuotaWindow, Int?, Int)] = [(.tokensPerDay, q.tokensPerDay, s.dayTokens),
                                                    (.tokensPerMonth, q.tokensPerMonth, s.monthTokens),
                                                    (.requestsPerDay, q.requestsPerDay, s.dayRequests)]
            for (window, limit, value) in rows {
                guard let limit else { continue }
                let labels = "{user=\(Metrics.label(user)),quota=\"\(window.rawValue)\"}"
                used += "tollgate_quota_used\(labels) \(value)\n"
                limits += "tollgate_quota_limit\(labels) \(limit)\n"
            }
        }
        return "# HELP tollgate_quota_used Tokens or requests a user has spent in the current UTC day or month, "
            + "for each quota their policy sets.\n# TYPE tollgate_quota_used gauge\n" + used
            + "# HELP tollgate_quota_limit The quota a user's policy sets for the current UTC day or month.\n"
            + "# TYPE tollgate_quota_limit gauge\n" + limits
    }
}
