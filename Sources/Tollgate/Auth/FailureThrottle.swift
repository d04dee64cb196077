/// Failure bookkeeping per key (a client prefix, or a client prefix and a user): after `limit` failures within
/// `windowNanos`, the key is refused without checking until the oldest of those failures leaves the window.
///
/// Remembers at most `limit` timestamps per key and at most `maxClients` keys (expired ones are swept first).
/// Not thread-safe: `LoginThrottle` is guarded by the authenticator's lock.
struct FailureThrottle<Key: Hashable & Sendable>: Sendable {
    /// Failures that trigger throttling; 0 turns throttling off.
    let limit: Int
    /// The sliding window, in the injected clock's nanoseconds.
    let windowNanos: UInt64
    /// The most keys tracked at once.
    let maxClients: Int
    private var failures: [Key: [UInt64]] = [:]

    /// Throttling after `limit` failures within `windowNanos`.
    init(limit: Int, windowNanos: UInt64, maxClients: Int = 65_536) {
        self.limit = max(0, limit)
        self.windowNanos = windowNanos
        self.maxClients = max(1, maxClients)
    }

    /// Whole seconds (at least 1) until `key` may try again, or nil when it is not throttled at `now`.
    mutating func retryAfter(_ key: Key, now: UInt64) -> Int? {
        guard limit > 0, let recorded = failures[key] else { return nil }
        let recent = inWindow(recorded, now: now)
        if recent.isEmpty {
            failures[key] = nil
            return nil
        }
        if recent.count != recorded.count { failures[key] = recent }
        guard recent.count >= limit else { return nil }
        let reopens = recent[recent.count - limit] + windowNanos
        // `reopens > now` here: the oldest counted failure is still inside the window.
        return max(1, Int((reopens - now + 999_999_999) / 1_000_000_000))
    }

    /// Records a failure by `key` at `now`; true when this one makes it throttled (the moment to log, once).
    mutating func recordFailure(_ key: Key, now: UInt64) -> Bool {
        guard limit > 0 else { return false }
        var recent = inWindow(failures[key] ?? [], now: now)
        recent.append(now)
        if recent.count > limit { recent.removeFirst(recent.count - limit) }
        if failures[key] == nil, failures.count >= maxClients { sweep(now: now) }
        failures[key] = recent
        return recent.count == limit
    }

    /// The number of keys tracked.
    var trackedClients: Int { failures.count }

    private func inWindow(_ times: [UInt64], now: UInt64) -> [UInt64] {
        times.filter { $0 + windowNanos > now }
    }

    /// Drops keys with no failure in the window; if that is not enough, drops arbitrary ones down to 3/4 full.
    private mutating func sweep(now: UInt64) {
        failures = failures.filter { _, times in times.contains { $0 + windowNanos > now } }
        while failures.count >= maxClients * 3 / 4, let any = failures.keys.first {
            failures[any] = nil
        }
    }
}
