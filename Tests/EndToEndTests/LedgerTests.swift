import FakeOllama
import Foundation
import Glibc
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

/// The usage ledger end to end: requests through Tollgate to the fake Ollama leave one row each in the state
/// database, with the tokens Ollama reported; a refused login leaves none; the metrics count the rows.
@Suite struct LedgerTests {
    static let alice = Credential.basic("alice", "pw-a")

    @Test func requestsLeaveRowsWithTheTokensOllamaReported() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let path = StateDatabase.path(in: url.path + "/state")   // the state directory itself is created
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        var counts: (prompt: Int, completion: Int)?
        var chatUsage: [String: Any] = [:]
        try withProxyAndFake(configure: { config in
            config.users = users
            config.databasePath = path
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, _ in
            let generate = try proxy.fetch(Req.generate(Self.alice))
            #expect(generate.status == 200)
            counts = finalOllamaCounts(generate)
            let chat = try proxy.fetch(Req.post("/v1/chat/completions",
                                                #"{"model":"mistral:7b","messages":[{"role":"user","content":"hello there"}]}"#, Self.alice))
            #expect(chat.status == 200)
            chatUsage = jsonObject(chat)?["usage"] as? [String: Any] ?? [:]
            #expect(try proxy.fetch(Req.get("/api/version", Self.alice)).status == 200)
            #expect(try proxy.fetch(Req.get("/api/version")).status == 401)
            try #require(proxy.server.ledger).sync()
            let scrape = try MetricsScrape(proxy)
            #expect((scrape["tollgate_ledger_rows_written_total"] ?? 0) >= 1)
            #expect(scrape["tollgate_ledger_rows_dropped_total{reason=\"busy\"}"] == 0)
        }
        // The server has stopped: every row is written.
        let rows = try UsageStore(reading: path).rows()
        #expect(rows.map(\.route) == ["/api/generate", "/v1/chat/completions", "/api/version"])
        #expect(rows.allSatisfy { $0.user == "alice" && $0.status == 200 && $0.keyID == nil && $0.backend == nil })
        let counted = try #require(counts)
        #expect(rows[0].promptTokens == counted.prompt && rows[0].completionTokens == counted.completion)
        #expect(rows[0].model == "mistral:7b")
        #expect(rows[1].promptTokens == chatUsage["prompt_tokens"] as? Int)
        #expect(rows[1].completionTokens == chatUsage["completion_tokens"] as? Int)
        #expect(rows[2].promptTokens == nil && rows[2].completionTokens == nil)
        #expect(rows.allSatisfy { $0.durationMicros > 0 && ($0.ttfbMicros ?? 0) > 0 })
        #expect(Set(rows.map(\.requestID)).count == 3)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    /// The state database made unwritable while Tollgate runs (as a disk remounted read-only): every request is still
    /// answered, and the rows that could not be written are counted in the metrics, none silently.
    @Test(.enabled(if: ImmutableFiles.available, "needs chattr and the right to set the immutable attribute"))
    func aDatabaseMadeReadOnlyMidRunFailsNoRequest() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let path = StateDatabase.path(in: url.path + "/state")
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        let files = [path, path + "-wal"]
        defer { try? ImmutableFiles.set(files, false) }
        try withProxyAndFake(configure: { config in
            config.users = users
            config.databasePath = path
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, _ in
            let ledger = try #require(proxy.server.ledger)
            #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200)
            ledger.sync()
            #expect(ledger.written == 1)

            try ImmutableFiles.set(files, true)
            for _ in 0..<5 {
                #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200)
            }
            ledger.sync()
            #expect(ledger.written == 1)
            let scrape = try MetricsScrape(proxy)
            let dropped = UsageLedger.dropReasons.reduce(0.0) {
                $0 + (scrape["tollgate_ledger_rows_dropped_total{reason=\"\($1)\"}"] ?? 0)
            }
            #expect(dropped == 5)
            #expect(scrape["tollgate_ledger_rows_written_total"] == 1)
        }
        try ImmutableFiles.set(files, false)
        #expect(try UsageStore(reading: path).rows().count == 1)
    }
}
