import Testing
@testable import Tollgate
import TollgateIO

/// The quota book seeded from the real ledger after a restart: it charges what the running server had charged
/// (the rows' `charged_tokens` and `counted_request`, a cut-off request's whole reservation included), by UTC day
/// and month.
@Suite struct LedgerSpendingHistoryTests {
    @Test func aRestartedQuotaBookHoldsWhatTheLedgerCharged() throws {
        let dir = try makeTemporaryDirectory()
        let path = StateDatabase.path(in: dir)
        let noon = UsageLedgerTests.noon
        let day = UsageClock.dayStart(noon)
        let month = UsageClock.monthStart(noon)
        let ledger = try UsageLedger(settings: UsageLedger.Settings(path: path, retentionSeconds: nil))
        // Counted by Ollama today.
        var counted = ledgerRow(0, time: noon, prompt: 10, completion: 5)
        counted.chargedTokens = 15
        counted.countedRequest = true
        // Cut off before its count: no tokens from Ollama, the whole reservation charged.
        var cut = ledgerRow(1, time: noon, prompt: nil, completion: nil)
        cut.chargedTokens = 400
        cut.countedRequest = true
        // Never forwarded: nothing.
        let refused = ledgerRow(2, time: noon, prompt: nil, completion: nil)
        // Earlier this month, and last month.
        var earlier = ledgerRow(3, time: day - 1)
        earlier.chargedTokens = 100
        earlier.countedRequest = true
        var lastMonth = ledgerRow(4, time: month - 1)
        lastMonth.chargedTokens = 5000
        lastMonth.countedRequest = true
        for row in [counted, cut, refused, earlier, lastMonth] { ledger.record(row) }
        ledger.stop()

        let book = QuotaBook(clock: { noon / 1000 })
        try book.seed(from: LedgerSpendingHistory(path: path))
        #expect(book.balance(of: "alice") == (415, 515, 2, 0))
    }

    @Test func aMissingLedgerIsAnErrorNamingTheFile() throws {
        let dir = try makeTemporaryDirectory()
        let path = StateDatabase.path(in: dir)
        let book = QuotaBook(clock: { UsageLedgerTests.noon / 1000 })
        #expect(throws: SQLiteError.self) { try book.seed(from: LedgerSpendingHistory(path: path)) }
    }
}
