import Synchronization
@testable import Tollgate
import TollgateIO
import Testing

/// Fallback is logged once per process when the first worker enters it and once when the last one leaves it;
/// metrics follow; the process-wide queue count never passes its limit.
@Suite struct SharedLimitsStatusTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
    }

    @Test func fallbackIsLoggedOnceOnEntryAndOnceOnEndOverAllWorkers() {
        let log = Lines()
        let status = SharedLimitsStatus(address: "redis://10.0.0.9:6379/0", workers: 2) { warning, message in
            log.lines.withLock { $0.append("\(warning ? "warning" : "info"): \(message)") }
        }
        status.enterFallback(.rate, policy: .local, error: .timeout)
        status.enterFallback(.rate, policy: .local, error: .connectionLost(111))
        #expect(log.all.count == 1)
        #expect(log.all[0].hasPrefix("warning: shared rate limits: Redis at redis://10.0.0.9:6379/0 is unavailable (timed out)"))
        #expect(status.isInFallback(.rate))
        #expect(!status.isInFallback(.slots))
        status.leaveFallback(.rate)
        #expect(log.all.count == 1, "one worker still falls back")
        status.leaveFallback(.rate)
        #expect(log.all.count == 2)
        #expect(log.all[1].hasPrefix("info: shared rate limits: Redis at redis://10.0.0.9:6379/0 answers again"))
        #expect(!status.isInFallback(.rate))
    }

    @Test func metricsReflectConnectionsFallbacksAndCalls() {
        let status = SharedLimitsStatus(address: "redis://h:1/0", workers: 2) { _, _ in }
        status.workerConnection(up: true)
        #expect(status.renderMetrics().contains("tollgate_redis_up 0\n"), "one of two workers is up")
        status.workerConnection(up: true)
        status.countCall(failed: false)
        status.countCall(failed: true)
        status.enterFallback(.slots, policy: .closed, error: .notConnected)
        let text = status.renderMetrics()
        #expect(text.contains("tollgate_redis_up 1\n"))
        #expect(text.contains("tollgate_redis_fallback{limiter=\"slots\"} 1\n"))
        #expect(text.contains("tollgate_redis_fallback{limiter=\"rate\"} 0\n"))
        #expect(text.contains("tollgate_redis_fallback{limiter=\"login\"} 0\n"))
        #expect(text.contains("tollgate_redis_calls_total 2\n"))
        #expect(text.contains("tollgate_redis_errors_total 1\n"))
    }

    @Test func theQueueCountStopsAtItsLimit() {
        let count = SharedCount()
        #expect(count.enter(limit: 2))
        #expect(count.enter(limit: 2))
        #expect(!count.enter(limit: 2))
        count.leave()
        #expect(count.enter(limit: 2))
        #expect(count.value == 2)
        #expect(!count.enter(limit: 0))
    }
}
