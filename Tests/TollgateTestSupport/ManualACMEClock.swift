import Foundation
import Glibc
import Tollgate

/// A clock the test moves by hand: the ACME thread sleeps on it until the test advances it past the planned time.
public final class ManualACMEClock: ACMEClock, @unchecked Sendable {
    private let condition = NSCondition()
    private var time: Int64
    private var interrupted = false

    public init(_ time: Int64 = Int64(Glibc.time(nil))) { self.time = time }

    public func now() -> Int64 {
        condition.lock()
        defer { condition.unlock() }
        return time
    }

    public func wait(until target: Int64) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !interrupted && time < target { condition.wait() }
        return !interrupted
    }

    public func interrupt() {
        condition.lock()
        interrupted = true
        condition.broadcast()
        condition.unlock()
    }

    /// Moves the clock on to `target` (never back) and wakes the thread.
    public func advance(to target: Int64) {
        condition.lock()
        time = max(time, target)
        condition.broadcast()
        condition.unlock()
    }
}
