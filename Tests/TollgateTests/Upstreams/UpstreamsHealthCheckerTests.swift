import Dispatch
import Glibc
import Synchronization
import Testing
import TollgateIO
@testable import Tollgate

/// The health checker once stopped (the server shutting down) starts no more rounds, even when asked for one: its
/// probes would outlive the loop's last pass, their sockets never closed.
@Suite struct UpstreamsHealthCheckerTests {
    /// A checker of one backend on 127.0.0.1:`port`, with hour-long rounds (only `checkNow` starts one), on a loop
    /// that is not running yet.
    static func checker(port: UInt16, failuresToEject: Int) throws -> (LoopBox, BackendSet, HealthChecker) {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let backends = BackendSet(backends: [(UpstreamAddress(parsing: "http://127.0.0.1:\(port)")!, nil)], queueLimit: 4,
                                  queueTimeoutMillis: 1_000, failuresToEject: failuresToEject)
        return (LoopBox(loop), backends, HealthChecker(set: backends, loop: loop, intervalSeconds: 3_600))
    }

    @Test func aStoppedCheckerAnswersARoundAskedForWithoutProbing() throws {
        // Nothing listens on port 1: a probe fails at once, and one failure ejects the backend.
        let (box, backends, checker) = try Self.checker(port: 1, failuresToEject: 1)
        box.loop.execute { checker.stop() }
        let done = DispatchSemaphore(value: 0)
        checker.checkNow { done.signal() }
        let waitUntilStopped = box.runInBackground()
        #expect(done.wait(timeout: .now() + 30) == .success, "the round asked for was never answered")
        // Stopped after the answer, from the loop: a probe started would have failed and ejected the backend first.
        box.loop.execute { box.loop.stop() }
        #expect(waitUntilStopped(), "the loop did not stop")
        #expect(backends.snapshot.first?.healthy == true, "a stopped checker probed the backend")
    }
}

extension UpstreamsHealthCheckerTests {
    /// A round asked for while another is in progress waits for the next round; the checker stopping in between
    /// (the server shutting down) must not start that round when the first ends, or its probes outlive the loop.
    /// The three requests reach the loop in one batch: the first starts a round (its refused probe reports at the
    /// end of the pass), the second waits for the next round, then the checker stops.
    @Test func aRoundAskedForDuringAnotherIsNotStartedOnceStopped() throws {
        // Nothing listens on port 1: each probe fails at once; two failures eject the backend, one does not.
        let (box, backends, checker) = try Self.checker(port: 1, failuresToEject: 2)
        let first = DispatchSemaphore(value: 0)
        let second = DispatchSemaphore(value: 0)
        checker.checkNow { first.signal() }
        checker.checkNow { second.signal() }
        box.loop.execute { checker.stop() }
        let waitUntilStopped = box.runInBackground()
        #expect(first.wait(timeout: .now() + 30) == .success, "the round in progress was never answered")
        #expect(second.wait(timeout: .now() + 30) == .success, "the round asked for next was never answered")
        box.loop.execute { box.loop.stop() }
        #expect(waitUntilStopped(), "the loop did not stop")
        #expect(backends.snapshot.first?.healthy == true, "a stopped checker started the next round and probed again")
    }
}

extension UpstreamsHealthCheckerTests {
    /// A probe still waiting for its backend when its loop finishes (the server stopped during a round) closes its
    /// connection: the loop lets go of its handlers, and a probe dropped unfinished kept its socket open for the
    /// rest of the process. The backend here accepts nothing and answers nothing, so the probe is in flight when the
    /// loop stops; the test then accepts the connection and reads until the probe's side closes.
    @Test func aProbeInFlightWhenItsLoopFinishesClosesItsConnection() throws {
        let listener = try Socket.listen(on: SocketAddress(parsing: "127.0.0.1:0")!, reusePort: false, backlog: 4)
        defer { close(listener) }
        let port = try #require(Socket.localAddress(listener)).port
        let (box, _, checker) = try Self.checker(port: port, failuresToEject: 1)
        let answered = Atomic<Bool>(false)
        checker.checkNow { answered.store(true, ordering: .relaxed) }
        box.loop.execute {
            checker.stop()
            box.loop.stop()
        }
        #expect(box.runInBackground()(), "the loop did not stop")
        let wasAnswered = answered.load(ordering: .relaxed)
        #expect(!wasAnswered, "the backend answered a probe it never read")
        guard case .connection(let fd, _) = Socket.accept(listener) else {
            Issue.record("the probe never connected")
            return
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var closed = false
        reading: while true {
            switch Syscall.read(fd, into: &buffer, at: 0, count: buffer.count) {
            case .bytes: continue
            case .eof: closed = true; break reading
            case .wouldBlock, .failed: break reading
            }
        }
        #expect(closed, "the probe's connection stayed open after its loop finished")
    }
}
