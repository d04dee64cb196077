import Testing
@testable import Tollgate

/// Request-derived values cannot forge or split an access-log line, in either format.
@Suite struct ObserveAccessRecordTests {
    private func record(path: String, model: String?, user: String? = "alice") -> AccessRecord {
        AccessRecord(requestID: Array("r1".utf8), client: Array("203.0.113.9".utf8), user: user, method: "POST",
                     path: path, status: 200, bytesIn: 1, bytesOut: 2, durationNanos: 3_000_000, ttfbNanos: nil,
                     upstreamNanos: nil, model: model, promptTokens: nil, completionTokens: nil, rateLimit: RateLimitResult(.pass),
                     auth: .allowed, reason: .completed)
    }

    private static let hostile = [
        "a\nb", "a\r\n2026-01-01T00:00:00Z r2 1.2.3.4 admin \"POST /api/pull\" 200", "a b", "a\"b", "a\\b", "a\u{1B}[31m",
        "a\u{7F}", "é", "a\u{2028}b", "\u{0}",
    ]

    @Test(arguments: hostile)
    func textLinesStayOneLineWithEveryFieldIntact(_ value: String) {
        var out: [UInt8] = []
        record(path: "/api/chat" + value, model: value, user: value).appendText(timestamp: "T", to: &out)
        let line = String(decoding: out, as: UTF8.self)
        #expect(line.filter { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }.count == 1)
        #expect(line.hasSuffix(" \(CloseReason.completed.rawValue)\n"))
        #expect(out.allSatisfy { $0 == 0x0A || ($0 >= 0x20 && $0 < 0x7F) })
        // Space-separated fields: timestamp, id, client, user, "method path", status...
        let quoted = line.split(separator: "\"")
        #expect(quoted.count == 3, "\(line)")
        #expect(quoted[0].split(separator: " ").count == 4, "\(line)")
        #expect(line.components(separatedBy: " model=")[1].split(separator: " ").count == 2, "\(line)")
    }

    @Test(arguments: hostile)
    func jsonLinesStayOneObjectPerLine(_ value: String) {
        var out: [UInt8] = []
        record(path: "/api/chat" + value, model: value).appendJSON(timestamp: "T", to: &out)
        #expect(out.filter { $0 == 0x0A }.count == 1)
        #expect(out.last == 0x0A)
        #expect(!out.contains(0x0D) && !out.contains(0x1B) && !out.contains(0x7F))
    }

    @Test func plainValuesAreWrittenAsTheyAre() {
        #expect(AccessRecord.escaped("mistral:7b", quoted: false) == "mistral:7b")
        #expect(AccessRecord.escaped("/api/chat x", quoted: true) == "/api/chat x")
        #expect(AccessRecord.escaped("a b", quoted: false) == #"a\x20b"#)
        #expect(AccessRecord.escaped("é", quoted: true) == #"\xC3\xA9"#)
    }
}
