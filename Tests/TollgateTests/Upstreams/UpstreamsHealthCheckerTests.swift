import Dispatch
import Testing
import TollgateIO
@testable import Tollgate

/// The health checker once stopped (the server shutting down) starts no more rounds, even when asked for one: its
/// probes would outlive the loop's last pass, their sockets never closed.
@Suite struct UpstreamsHealthCheckerTests {
    @Test func aStoppedCheckerAnswersARoundAskedForWithoutProbing() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        // Nothing listens on port 1: a probe fails at once, and one failure ejects the backend.
        let backends = BackendSet(backends: [(UpstreamAddress(parsing: "http://127.0.0.1:1")!, nil)], queueLimit: 4,
                                  queueTimeoutMillis: 1_000, failuresToEject: 1)
        let checker = HealthChecker(set: backends, loop: loop, intervalSeconds: 3_600)
        loop.execute { checker.stop() }
        let done = DispatchSemaphore(value: 0)
        checker.checkNow { done.signal() }
        let box = UncheckedBox(loop)
        let stopped = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.value.run()
            stopped.signal()
        }
        #expect(done.wait(timeout: .now() + 30) == .success, "the round asked for was never answered")
        // Stopped after the answer, from the loop: a probe started would have failed and ejected the backend first.
        loop.execute { box.value.stop() }
        #expect(stopped.wait(timeout: .now() + 30) == .success, "the loop did not stop")
        #expect(backends.snapshot.first?.healthy == true, "a stopped checker probed the backend")
    }
}

extension UpstreamsHealthCheckerTests {
    /// A round asked for while another is in progress waits for the next round; the checker stopping in between
    /// (the server shutting down) must not start that round when the first ends, or its probes outlive the loop.
    /// The three requests reach the loop in one batch: the first starts a round (its refused probe reports at the
    /// end of the pass), the second waits for the next round, then the checker stops.
    @Test func aRoundAskedForDuringAnotherIsNotStartedOnceStopped() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        // Nothing listens on port 1: each probe fails at once; two failures eject the backend, one does not.
        let backends = BackendSet(backends: [(UpstreamAddress(parsing: "http://127.0.0.1:1")!, nil)], queueLimit: 4,
                                  queueTimeoutMillis: 1_000, failuresToEject: 2)
        let checker = HealthChecker(set: backends, loop: loop, intervalSeconds: 3_600)
        let first = DispatchSemaphore(value: 0)
        let second = DispatchSemaphore(value: 0)
        checker.checkNow { first.signal() }
        checker.checkNow { second.signal() }
        loop.execute { checker.stop() }
        let box = UncheckedBox(loop)
        let stopped = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.value.run()
            stopped.signal()
        }
        #expect(first.wait(timeout: .now() + 30) == .success, "the round in progress was never answered")
        #expect(second.wait(timeout: .now() + 30) == .success, "the round asked for next was never answered")
        loop.execute { box.value.stop() }
        #expect(stopped.wait(timeout: .now() + 30) == .success, "the loop did not stop")
        #expect(backends.snapshot.first?.healthy == true, "a stopped checker started the next round and probed again")
    }
}
