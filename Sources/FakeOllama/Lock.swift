import TollgateIO

/// The server's one lock: `TollgateIO.ConditionLock` (a mutex with a condition variable, for the waits on request
/// counts, connections and step-mode grants).
typealias Lock = ConditionLock

/// Monotonic time for pacing and timeouts (never wall-clock).
enum Clock {
    /// Nanoseconds on CLOCK_MONOTONIC.
    static func nowNanos() -> UInt64 {
        Syscall.monotonicNanos()
    }

    /// The monotonic deadline `seconds` from now (clamped to at least now).
    static func deadline(afterSeconds seconds: Double) -> UInt64 {
        nowNanos() + UInt64(max(0, seconds) * 1_000_000_000)
    }
}
