import Testing
import TollgateIO
@testable import Tollgate

/// Request ids as written in `X-Request-Id`, the access log and the ledger: always 16 lowercase hex digits, leading
/// zeros kept, distinct per request.
@Suite struct ProxyRequestIDTests {
    @Test(arguments: [
        (UInt64(0), "0000000000000000"), (0xab, "00000000000000ab"), (0x0123_4567_89ab_cdef, "0123456789abcdef"),
        (0xfedc_ba98_7654_3210, "fedcba9876543210"), (UInt64.max, "ffffffffffffffff"),
    ])
    func sixteenLowercaseHexDigits(value: UInt64, text: String) {
        let id = RequestID(value)
        #expect(id.text == text)
        #expect(id.bytes == Array(text.utf8))
        var out = Array("X-Request-Id: ".utf8)
        id.append(to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "X-Request-Id: \(text)")
    }

    @Test func aWorkerNeverRepeatsAnIDInARun() throws {
        var config = ServerConfig()
        config.metricsListen = []
        let worker = Worker(loop: try EventLoop(index: 0), config: config, tls: nil, authenticator: nil,
                            rateLimiter: nil, concurrency: nil, userRateLimiter: nil, logSink: nil)
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let id = worker.nextRequestID()
            #expect(id.bytes.count == 16)
            seen.insert(id.text)
        }
        #expect(seen.count == 10_000)
    }
}
