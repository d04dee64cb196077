import Testing
import TollgateIO
@testable import Tollgate

/// The decision-makers' one answer shape, and which implementation a worker picks.
@Suite struct PhasesDecidersTests {
    @Test func anAnswerGivenDuringTheCallIsNowAndNeverReachesLater() {
        var later: [Int] = []
        let answer = NowOrLater<Int>.asking({ completion in completion(7) }, later: { later.append($0) })
        guard case .now(let value) = answer else {
            Issue.record("not answered now: \(answer)")
            return
        }
        #expect(value == 7)
        #expect(later.isEmpty)
    }

    @Test func anAnswerGivenAfterTheCallGoesToLater() {
        var later: [Int] = []
        var pending: ((Int) -> Void)?
        let answer = NowOrLater<Int>.asking({ completion in pending = completion }, later: { later.append($0) })
        guard case .later = answer else {
            Issue.record("answered now: \(answer)")
            return
        }
        #expect(later.isEmpty)
        pending?(3)
        #expect(later == [3])
        #expect(answer.map { $0 * 2 }.isLater)
    }

    @Test func withoutSharedLimitsTheWorkerPicksThisProcesssLimiters() throws {
        let loop = try EventLoop(index: 0)
        var config = ServerConfig()
        config.metricsListen = []
        let worker = Worker(loop: loop, config: config, tls: nil, authenticator: nil,
                            rateLimiter: RateLimiter(settings: RateLimitSettings()),
                            concurrency: ConcurrencyLimiter(settings: ConcurrencyLimiter.Settings()),
                            userRateLimiter: nil, logSink: nil)
        #expect(worker.rateDecider is LocalRateDecider)
        #expect(worker.slots is LocalSlotProvider)
        #expect(worker.loginThrottle == nil, "authentication is off")
        #expect(PhasesListTests.names(worker.phases).contains("Concurrency"))
    }

    @Test func withSharedLimitsTheWorkerPicksTheFleetsOnce() throws {
        let loop = try EventLoop(index: 0)
        var config = ServerConfig()
        config.metricsListen = []
        let local = ConcurrencyLimiter(settings: ConcurrencyLimiter.Settings())
        let worker = Worker(loop: loop, config: config, tls: nil, authenticator: nil,
                            rateLimiter: RateLimiter(settings: RateLimitSettings()), concurrency: local,
                            userRateLimiter: nil, logSink: nil)
        let before = worker.phases
        // Built only: nothing is sent before `start`.
        let shared = SharedLimits(settings: SharedLimitsSettings(redis: RedisConfiguration(host: "127.0.0.1")),
                                  address: try #require(SocketAddress(parsing: "127.0.0.1:1")), loop: loop,
                                  status: SharedLimitsStatus(address: "127.0.0.1:1", workers: 1),
                                  rateSettings: RateLimitSettings(), fallbackRate: nil, authSettings: nil,
                                  concurrency: ConcurrencyLimiter.Settings(), fallbackConcurrency: local,
                                  queuedTotal: SharedCount(), heldTotal: SharedCount())
        worker.shared = shared
        #expect(worker.rateDecider is SharedRateDecider)
        #expect((worker.slots as? SharedSlots) === shared.slots)
        #expect(worker.phases !== before, "the phases are rebuilt around the picked implementations")
    }
}

extension NowOrLater {
    /// Whether the answer comes later.
    var isLater: Bool {
        if case .later = self { return true }
        return false
    }
}
