import Glibc

/// A mutex with one condition variable, for blocking threads (fake-ollama's connection threads and the tests that
/// wait on them). `Synchronization.Mutex` has no waiting, so the pthread pair lives here, behind a safe API.
///
/// Every waiter re-checks its predicate after waking; `broadcast` wakes all of them.
public final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    public init() {
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
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes every thread blocked in `wait(until:)`. Call with or without the mutex held.
    public func broadcast() {
        pthread_cond_broadcast(cond)
    }

    /// Waits, with the mutex held, until `predicate` is true or `deadline` (`Syscall.monotonicNanos`) passes.
    /// Returns the final value of `predicate`.
    public func wait(until deadline: UInt64, _ predicate: () -> Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !predicate() {
            if Syscall.monotonicNanos() >= deadline { return predicate() }
            var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
            _ = pthread_cond_timedwait(cond, mutex, &ts)
        }
        return true
    }
}
