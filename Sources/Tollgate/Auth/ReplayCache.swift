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
/// leave the window, never evicted early (eviction would reopen replays). Each key may hold at most `perKey` of
/// them: one key owner (or one stolen key) signing as fast as it can is refused on its own (429, `.keyOverShare`)
/// and cannot lock the other keys out; the whole cache is full only when many keys are busy at once.
///
/// Ed25519 signatures are deterministic: the same key signing the same `METHOD,PATH?ts=` twice in one second gives
/// the same signature, which the CLI does (`ollama run` sends `/api/chat` to load the model, then the prompt). So a
/// signature seen again on the connection that first presented it is accepted: a replayer does not have the
/// victim's TLS connection. A connection that carries several clients (a trusted proxy's, whose X-Forwarded-For
/// or PROXY header names another client than the TCP peer) has no such identity: it inserts with no connection,
/// and every repeat is a replay. Not thread-safe: `SignedLogins` locks it.
struct ReplayCache: Sendable {
    /// What `insert` found.
    enum Insertion: Equatable {
        /// Not seen before: now remembered.
        case fresh
        /// Seen before on the same connection (the client repeating a request within one second).
        case sameConnection
        /// Seen before on another connection.
        case replayed
        /// This key already holds its share of the cache: refused until its oldest signature leaves the window,
        /// `retryAfter` seconds from now.
        case keyOverShare(retryAfter: Int)
        /// The cache is full of signatures still in the window.
        case full
    }

    private struct Entry: Hashable, Sendable {
        var hi: UInt64
        var lo: UInt64
    }

    private struct Bucket: Sendable {
        var second: Int64 = .min
        /// The connection each signature came on (0: none, every repeat is a replay).
        var entries: [Entry: UInt64] = [:]
        /// How many of `entries` each key signed.
        var perKey: [Entry: Int] = [:]
    }

    /// Seconds either side of now a `ts` is accepted.
    let window: Int64
    /// Signatures remembered at most.
    let capacity: Int
    /// Signatures of one key remembered at most.
    let perKey: Int
    private var ring: [Bucket]
    private(set) var count = 0
    /// Signatures each key has in the ring (keys with none are absent).
    private var keyCounts: [Entry: Int] = [:]

    /// An empty cache for `window` seconds either side of now, holding at most `capacity` signatures and `perKey`
    /// of one key (at most `capacity`).
    init(window: Int64, capacity: Int, perKey: Int) {
        self.window = max(1, window)
        self.capacity = max(1, capacity)
        self.perKey = min(max(1, perKey), self.capacity)
        ring = Array(repeating: Bucket(), count: Int(2 * self.window + 2))
    }

    /// Remembers `signature` by `key` (its 32 raw bytes) signed at `ts` on `connection` (nil: a connection that
    /// carries several clients, where a repeat is always a replay), unless it was seen before; `now` is the wall
    /// clock in seconds. The caller has checked that `ts` is within the window of `now`.
    mutating func insert(_ signature: [UInt8], key: [UInt8], ts: Int64, connection: UInt64?,
                         now: Int64) -> Insertion {
        let entry = Self.entry(signature)
        let keyID = Self.entry(key)
        let slot = self.slot(ts)
        if ring[slot].second != ts { empty(slot, reuseFor: ts) }
        if let seenOn = ring[slot].entries[entry] {
            // Connection numbers start at 1: 0 marks a signature first seen on a shared connection.
            return seenOn != 0 && seenOn == connection ? .sameConnection : .replayed
        }
        if keyCounts[keyID, default: 0] >= perKey || count >= capacity {
            sweep(now: now)
            if keyCounts[keyID, default: 0] >= perKey { return .keyOverShare(retryAfter: retryAfter(keyID, now: now)) }
            if count >= capacity { return .full }
        }
        ring[slot].entries[entry] = connection ?? 0
        ring[slot].perKey[keyID, default: 0] += 1
        keyCounts[keyID, default: 0] += 1
        count += 1
        return .fresh
    }

    /// Signatures `key` has in the cache now.
    func count(of key: [UInt8]) -> Int { keyCounts[Self.entry(key), default: 0] }

    private func slot(_ second: Int64) -> Int {
        Int(((second % Int64(ring.count)) + Int64(ring.count)) % Int64(ring.count))
    }

    /// Empties `slot` (its second has left the window), forgetting its signatures in the per-key counts.
    private mutating func empty(_ slot: Int, reuseFor second: Int64 = .min) {
        count -= ring[slot].entries.count
        for (keyID, n) in ring[slot].perKey {
            let left = keyCounts[keyID, default: 0] - n
            keyCounts[keyID] = left > 0 ? left : nil
        }
        ring[slot] = Bucket(second: second)
    }

    /// Empties every bucket whose second has left the window.
    private mutating func sweep(now: Int64) {
        for i in ring.indices where ring[i].second != .min && ring[i].second < now - window { empty(i) }
    }

    /// Seconds until the oldest signature of `keyID` leaves the window (at least 1): one pass over the ring's
    /// seconds, oldest first, a dictionary lookup each.
    private func retryAfter(_ keyID: Entry, now: Int64) -> Int {
        for second in (now - window)...(now + window) {
            let bucket = ring[slot(second)]
            if bucket.second == second, bucket.perKey[keyID] != nil { return Int(max(1, second + window - now + 1)) }
        }
        return 1
    }

    /// The first 16 bytes of a signature (its `R`, a hash output) or of a public key: unique among them in practice.
    private static func entry(_ bytes: [UInt8]) -> Entry {
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for (i, byte) in bytes.prefix(16).enumerated() {
            if i < 8 { hi = hi << 8 | UInt64(byte) } else { lo = lo << 8 | UInt64(byte) }
        }
        return Entry(hi: hi, lo: lo)
    }
}
