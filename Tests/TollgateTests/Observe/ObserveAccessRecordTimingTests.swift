import Testing
@testable import Tollgate

/// The text format's time to first byte: milliseconds when a first byte came, a bare `-` when none did.
@Suite struct ObserveAccessRecordTimingTests {
    private func textLine(ttfbNanos: UInt64?) -> String {
        let record = AccessRecord(
            requestID: Array("r1".utf8), client: Array("203.0.113.9".utf8), user: "alice", method: "GET",
            path: "/api/tags", status: ttfbNanos == nil ? 401 : 200, bytesIn: 1, bytesOut: 2, durationNanos: 3_000_000,
            ttfbNanos: ttfbNanos, upstreamNanos: nil, model: nil, promptTokens: nil, completionTokens: nil,
            rateLimit: RateLimitResult(.pass), auth: ttfbNanos == nil ? .denied : .allowed, reason: .completed)
        var out: [UInt8] = []
        record.appendText(timestamp: "T", to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func noFirstByteIsABareDash() {
        let line = textLine(ttfbNanos: nil)
        #expect(line.contains(" ttfb=- "), "\(line)")
        #expect(!line.contains("-ms"), "\(line)")
    }

    @Test func aFirstByteIsInMilliseconds() {
        let line = textLine(ttfbNanos: 1_500_000)
        #expect(line.contains(" 3.0ms ttfb=1.5ms "), "\(line)")
    }
}
