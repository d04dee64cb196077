import Testing
@testable import Tollgate

/// Request-derived values cannot forge or split an access-log line, in either format.
@Suite struct ObserveAccessRecordTests {
    private func record(path: String, model: String?, user: String? = "alice", status: Int = 200,
                        auth: AuthResult = .allowed) -> AccessRecord {
        AccessRecord(requestID: Array("r1".utf8), client: Array("203.0.113.9".utf8), user: user, method: "POST",
                     path: path, status: status, bytesIn: 1, bytesOut: 2, durationNanos: 3_000_000, ttfbNanos: nil,
                     upstreamNanos: nil, model: model, promptTokens: nil, completionTokens: nil, rateLimit: RateLimitResult(.pass),
                     auth: auth, reason: .completed)
    }

    /// A refused login names the user it tried, escaped and cut to a bounded length, and the text line marks it as
    /// not logged in (the JSON line's `auth` field says so already).
    @Test func aRefusedLoginNamesTheAttemptedUserEscapedAndCut() throws {
        var text: [UInt8] = []
        record(path: "/api/tags", model: nil, user: "mal\"lory é", status: 401, auth: .denied)
            .appendText(timestamp: "T", to: &text)
        let line = String(decoding: text, as: UTF8.self)
        #expect(line.hasPrefix(#"T r1 203.0.113.9 mal\x22lory\x20\xC3\xA9 "POST /api/tags" 401 "#), "\(line)")
        #expect(line.hasSuffix(" auth=denied \(CloseReason.completed.rawValue)\n"), "\(line)")
        var allowed: [UInt8] = []
        record(path: "/api/tags", model: nil).appendText(timestamp: "T", to: &allowed)
        #expect(!String(decoding: allowed, as: UTF8.self).contains("auth="))

        var json: [UInt8] = []
        record(path: "/api/tags", model: nil, user: "mal\"lory\\", status: 401, auth: .denied).appendJSON(timestamp: "T", to: &json)
        #expect(String(decoding: json, as: UTF8.self).contains(#""user":"mal\"lory\\","#))

        let long = String(repeating: "é", count: 100)  // 200 bytes
        let cut = AccessRecord.clippedUser(long)
        #expect(cut == String(repeating: "é", count: 64) + "...(72 more bytes)")
        #expect(AccessRecord.clippedUser("alice") == "alice")
        #expect(AccessRecord.clippedUser(String(repeating: "a", count: 128)) == String(repeating: "a", count: 128))
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
