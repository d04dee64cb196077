/// The signatures of signed logins accepted within the timestamp window, so that a captured `Authorization` value
/// cannot be sent again from elsewhere while its `ts` is still accepted.
///
/// Time-bucketed by the signed `ts` (not by arrival): a signature can only be accepted while `|now − ts| ≤
/// window`, so it is kept until `ts + window` and no longer. The buckets form a ring of `2·window + 2` seconds; a
/// bucket still holding an older second is out of the window and is emptied when its slot is reused. Inserting is
/// O(1); only a cache at capacity sweeps the ring once for stale buckets before refusing.
///
/// Bounded: at most `capacity` signatures (16 bytes and a connection number each). Only signatures that verified
/// are inserted, so filling it takes authorized keys; past it new signed logins are refused (503) until old ones
/// leave the window, never evicted early (eviction would reopen replays).
///
/// Ed25519 signatures are deterministic: the same key signing the same `METHOD,PATH?ts=` twice in one second gives
/// the same signature, which the CLI does (`ollama run` sends `/api/chat` to load the model, then the prompt). So a
/// signature seen again on the connection that first presented it is accepted: a replayer does not have the
/// victim's TLS connection. From any other connection it is a replay. Not thread-safe: `SignedLogins` locks it.
struct ReplayCache: Sendable {
    /// What `insert` found.
    enum Insertion: Equatable {
        /// Not seen before: now remembered.
        case fresh
        /// Seen before on the same connection (the client repeating a request within one second).
        case sameConnection
        /// Seen before on another connection.
        case replayed
        /// The cache is full of signatures still in the window.
        case full
    }

    private struct Entry: Hashable, Sendable {
        var hi: UInt64
        var lo: UInt64
    }

    private struct Bucket: Sendable {
        var second: Int64 = .min
        var entries: [Entry: UInt64] = [:]
    }

    /// Seconds either side of now a `ts` is accepted.
    let window: Int64
    /// Signatures remembered at most.
    let capacity: Int
    private var ring: [Bucket]
    private(set) var count = 0

    /// An empty cache for `window` seconds either side of now, holding at most `capacity` signatures.
    init(window: Int64, capacity: Int) {
        self.window = max(1, window)
        self.capacity = max(1, capacity)
        ring = Array(repeating: Bucket(), count: Int(2 * self.window + 2))
    }

    /// Remembers `signature` signed at `ts` on `connection`, unless it was seen before; `now` is the wall clock in
    /// seconds. The caller has checked that `ts` is within the window of `now`.
    mutating func insert(_ signature: [UInt8], ts: Int64, connection: UInt64, now: Int64) -> Insertion {
        let entry = Self.entry(signature)
        let slot = Int(((ts % Int64(ring.count)) + Int64(ring.count)) % Int64(ring.count))
        if ring[slot].second != ts {
            count -= ring[slot].entries.count
            ring[slot] = Bucket(second: ts, entries: [:])
        }
        if let seenOn = ring[slot].entries[entry] {
            return seenOn == connection ? .sameConnection : .replayed
        }
        if count >= capacity {
            sweep(now: now)
            if count >= capacity { return .full }
        }
        ring[slot].entries[entry] = connection
        count += 1
        return .fresh
    }

    /// Empties every bucket whose second has left the window.
    private mutating func sweep(now: Int64) {
        for i in ring.indices where ring[i].second != .min && ring[i].second < now - window {
            count -= ring[i].entries.count
            ring[i] = Bucket()
        }
    }

    /// The first 16 bytes of the signature (its `R`, a hash output): unique among signatures in practice.
    private static func entry(_ signature: [UInt8]) -> Entry {
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for (i, byte) in signature.prefix(16).enumerated() {
            if i < 8 { hi = hi << 8 | UInt64(byte) } else { lo = lo << 8 | UInt64(byte) }
        }
        return Entry(hi: hi, lo: lo)
    }
}
