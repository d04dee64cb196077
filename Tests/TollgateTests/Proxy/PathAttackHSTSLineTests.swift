import Testing
import TollgateHTTP
import TollgateIO
@testable import Tollgate

/// The HSTS line a worker makes once per configuration: the line for the configured value from the start, made
/// again by every change of the configuration (a whole new one, as a reload hands over, or one field), gone when
/// HSTS is turned off, and the same bytes Tollgate's own answers write for that value.
@Suite struct PathAttackHSTSLineTests {
    static func worker(hsts: String?) throws -> Worker {
        var config = ServerConfig()
        config.metricsListen = []
        config.hsts = hsts
        return Worker(loop: try EventLoop(index: 0), config: config, tls: nil, authenticator: nil, rateLimiter: nil,
                      concurrency: nil, userRateLimiter: nil, logSink: nil)
    }

    /// What `answer` writes for `value` (the per-answer path, from the configuration's string).
    static func answerLine(_ value: String) -> [UInt8] {
        var out: [UInt8] = []
        HTTPWriter.appendHeader("Strict-Transport-Security", value, to: &out)
        return out
    }

    @Test func theLineFollowsEveryConfigurationChange() throws {
        let worker = try Self.worker(hsts: "max-age=63072000")
        #expect(worker.hstsLine == Self.answerLine("max-age=63072000"))
        // A whole new configuration, as a reload hands each loop.
        var next = worker.config
        next.hsts = "max-age=1; includeSubDomains; preload"
        worker.config = next
        #expect(worker.hstsLine == Self.answerLine("max-age=1; includeSubDomains; preload"))
        // Off.
        next.hsts = nil
        worker.config = next
        #expect(worker.hstsLine == nil)
        // One field changed in place.
        worker.config.hsts = "max-age=2"
        #expect(worker.hstsLine == Self.answerLine("max-age=2"))
        // Another field changed: the line stays the configured one.
        worker.config.realm = "elsewhere"
        #expect(worker.hstsLine == Self.answerLine("max-age=2"))
        #expect(try Self.worker(hsts: nil).hstsLine == nil)
    }

    @Test func aProxiedHeadCarriesTheLineOnceAndNothingWithout() throws {
        let raw = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".utf8)
        var head = ResponseHead()
        try #require(ResponseParser().parse(raw, from: 0, to: raw.count, requestWasHead: false, into: &head) == .complete)
        for value in ["max-age=1", "max-age=63072000; includeSubDomains"] as [String?] + [nil] {
            var out: [UInt8] = []
            ResponseRewriter.write(head, buffer: raw, mode: .length(0), requestID: RequestID(1), close: false,
                                   hsts: value.map(ResponseRewriter.hstsLine), into: &out)
            let text = String(decoding: out, as: UTF8.self)
            let lines = text.split(separator: "\r\n").filter { $0.hasPrefix("Strict-Transport-Security:") }
            #expect(lines == (value.map { ["Strict-Transport-Security: \($0)"] } ?? []), "\(text)")
        }
    }
}
