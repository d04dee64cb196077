import Glibc

/// A pthread mutex with one condition variable, for state shared between connection threads and tests.
///
/// Every waiter re-checks its predicate after `wait`; `broadcast` wakes all of them.
final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        // CLOCK_MONOTONIC so a wall-clock step cannot stretch or cut a timed wait.
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the mutex held.
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes every thread blocked in `wait(until:)`. Call with or without the mutex held.
    func broadcast() {
        pthread_cond_broadcast(cond)
    }

    /// Waits, with the mutex held, until `predicate` is true or `deadline` (monotonic nanoseconds) passes.
    /// Returns the final value of `predicate`.
    func wait(until deadline: UInt64, _ predicate: () -> Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !predicate() {
            if Clock.nowNanos() >= deadline { return predicate() }
            var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
            _ = pthread_cond_timedwait(cond, mutex, &ts)
        }
        return true
    }
}

/// Monotonic time for pacing and timeouts (never wall-clock).
enum Clock {
    /// Nanoseconds on CLOCK_MONOTONIC.
    static func nowNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The monotonic deadline `seconds` from now (clamped to at least now).
    static func deadline(afterSeconds seconds: Double) -> UInt64 {
        nowNanos() + UInt64(max(0, seconds) * 1_000_000_000)
    }
}
