import Synchronization

/// Rate-limit buckets for any key type, split over independently locked shards so event loops rarely contend.
///
/// A key always maps to the same shard (by its hash), so it has exactly one bucket however many loops and
/// connections see it. The shards' capacities add up to `maxKeys`; each evicts its own least recently used key. The
/// critical section is one hash lookup and a few stores; nothing is allocated once a shard is full.
final class ShardedBuckets<Key: Hashable & Sendable>: Sendable {
    /// One lock and table, padded so neighbouring shards do not share a cache line.
    private final class Shard: Sendable {
        let table: Mutex<BucketTable<Key>>
        private let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

        init(capacity: Int) {
            table = Mutex(BucketTable(capacity: capacity))
        }
    }

    private let shards: [Shard]
    private let shift: UInt

    /// The shard count used when none is given: 1 for small tables (so LRU is exact), up to 64 for large ones,
    /// always a power of two with at least 1024 keys per shard.
    static func defaultShardCount(maxKeys: Int) -> Int {
        var n = 1
        while n < 64 && maxKeys / (n * 2) >= 1024 { n *= 2 }
        return n
    }

    /// Buckets for up to `maxKeys` keys over `shardCount` shards (a power of two, at most `maxKeys`).
    init(maxKeys: Int, shardCount: Int? = nil) {
        let total = max(1, maxKeys)
        var n = 1
        while n < min(total, max(1, shardCount ?? ShardedBuckets.defaultShardCount(maxKeys: total))) { n *= 2 }
        if n > total { n /= 2 }
        // Spread the remainder so the shards' capacities add up to exactly maxKeys.
        shards = (0..<n).map { i in Shard(capacity: total / n + (i < total % n ? 1 : 0)) }
        shift = UInt(UInt.bitWidth - n.trailingZeroBitCount)
    }

    /// Applies one request for `key` at `now`; safe from any thread.
    func check(_ key: Key, now: UInt64, policy: RatePolicy) -> RateDecision {
        shard(for: key).table.withLock { $0.check(key, now: now, policy: policy) }
    }

    /// Whether `key` currently has a bucket.
    func contains(_ key: Key) -> Bool {
        shard(for: key).table.withLock { $0.contains(key) }
    }

    /// Keys held across all shards (takes each shard's lock in turn; a snapshot, not atomic).
    var count: Int {
        shards.reduce(0) { sum, shard in sum + shard.table.withLock { $0.count } }
    }

    /// The number of shards.
    var shardCount: Int { shards.count }

    private func shard(for key: Key) -> Shard {
        // The top bits pick the shard; Dictionary indexes its buckets by the low bits, so a shard's table still
        // sees well-spread hashes.
        if shards.count == 1 { return shards[0] }
        let h = UInt(bitPattern: key.hashValue)
        return shards[Int(truncatingIfNeeded: h >> shift)]
    }
}
