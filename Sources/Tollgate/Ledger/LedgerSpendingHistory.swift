import TollgateIO

/// The usage ledger as the quota book's memory: what each user was charged in the current UTC day and month, read
/// from the rows' `charged_tokens` and `counted_request` (written with the same charge the running server settled),
/// so that a restart forgets no spending. Blocking: read once at start-up, before any loop runs.
public struct LedgerSpendingHistory: SpendingHistory {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func spent(sinceDay dayStart: Int64, sinceMonth monthStart: Int64) throws -> [String: Spending] {
        // The ledger keeps milliseconds; the quota book speaks seconds.
        try UsageStore(reading: path).charges(dayStart: dayStart * 1000, monthStart: monthStart * 1000)
    }
}
