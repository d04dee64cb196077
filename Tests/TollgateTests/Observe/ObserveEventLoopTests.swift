import Dispatch
import Testing
import TollgateIO

/// The event loop's own guarantee: deferred work that keeps deferring itself cannot keep the loop from its timers
/// and sockets (it runs one pass per iteration, the rest after the next `epoll_wait`).
@Suite struct ObserveEventLoopTests {
    @Test func selfDeferringWorkDoesNotStarveTimers() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let stopped = DispatchSemaphore(value: 0)
        let box = LoopBox(loop)
        DispatchQueue.global().async {
            box.loop.execute {
                // Work that defers itself again every time it runs, forever.
                func again() { box.loop.deferUntilIterationEnd { again() } }
                again()
                // The timer stops the loop: it can only fire if the loop gets back to epoll_wait and its timers.
                box.loop.schedule(afterNanos: 1_000_000) { box.loop.stop() }
            }
            box.loop.run()
            stopped.signal()
        }
        #expect(stopped.wait(timeout: .now() + 30) == .success, "the timer never fired: the loop is starved")
    }

    /// Timers fire when due, whatever order they were scheduled in; one a timer schedules is seen at once, though
    /// the only other timer left is an hour away (the loop keeps the earliest deadline, not a scan of all).
    @Test func timersFireWhenDueWhateverTheOrderTheyWereScheduledIn() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let stopped = DispatchSemaphore(value: 0)
        let box = LoopBox(loop)
        let fired = FiredTimers()
        DispatchQueue.global().async {
            box.loop.execute {
                box.loop.schedule(afterNanos: 3_600_000_000_000) { fired.names.append("an hour") }
                box.loop.schedule(afterNanos: 2_000_000) {
                    fired.names.append("second")
                    box.loop.schedule(afterNanos: 0) {
                        fired.names.append("third")
                        box.loop.stop()
                    }
                }
                box.loop.schedule(afterNanos: 0) { fired.names.append("first") }
            }
            box.loop.run()
            stopped.signal()
        }
        #expect(stopped.wait(timeout: .now() + 30) == .success, "a due timer waited for a later one")
        #expect(fired.names == ["first", "second", "third"])
    }
}

/// What the timers of one loop did, written on the loop's thread and read after it stopped.
final class FiredTimers: @unchecked Sendable {
    var names: [String] = []
}

/// Hands the loop to its thread (it is only touched there and through `execute`).
final class LoopBox: @unchecked Sendable {
    let loop: EventLoop
    init(_ loop: EventLoop) { self.loop = loop }
}
