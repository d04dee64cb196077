import Synchronization

/// The "denied until t" cache of a `SharedRateLimiter`, shared by every worker of a process: a rejection learned on
/// one loop answers the same key's requests on all loops until `t`. Thread-safe.
///
/// Times are monotonic nanoseconds (`EventLoop.now`, one clock for every loop of the process). Split over
/// independently locked shards by key hash, as `ShardedBuckets`; the shards' capacities add up to `capacity`. A full
/// shard first drops its expired entries, and if still full does not remember the new one (the next request for that
/// key asks Redis: a miss costs a call, never a wrong decision). The critical section is one hash lookup or store.
final class SharedDenials: Sendable {
    /// One lock and table, padded so neighbouring shards do not share a cache line.
    private final class Shard: Sendable {
        let table: Mutex<[[UInt8]: UInt64]>
        let capacity: Int
        private let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

        init(capacity: Int) {
            table = Mutex([:])
            self.capacity = capacity
        }
    }

    private let shards: [Shard]
    private let shift: UInt

    /// Most keys held across all shards.
    let capacity: Int

    /// An empty cache for up to `capacity` keys (0 remembers nothing), over as many shards as `ShardedBuckets` would use.
    init(capacity: Int = 65_536) {
        let total = max(0, capacity)
        self.capacity = total
        let n = ShardedBuckets<Int>.defaultShardCount(maxKeys: max(1, total))
        shards = (0..<n).map { i in Shard(capacity: total / n + (i < total % n ? 1 : 0)) }
        shift = UInt(UInt.bitWidth - n.trailingZeroBitCount)
    }

    /// The time `key` is denied until, if one is cached (possibly already past: the caller compares).
    func until(_ key: [UInt8]) -> UInt64? {
        shard(for: key).table.withLock { $0[key] }
    }

    /// Caches "`key` is denied until `until`". Keeps the later time if another loop already cached one: Redis's
    /// answers for a key only move its next admission later, so the later answer is the newer one.
    func remember(_ key: [UInt8], until: UInt64, now: UInt64) {
        let shard = shard(for: key)
        shard.table.withLock { table in
            if let known = table[key] {
                if until > known { table[key] = until }
                return
            }
            if table.count >= shard.capacity {
                table = table.filter { $0.value > now }
                if table.count >= shard.capacity { return }
            }
            table[key] = until
        }
    }

    /// Drops `key`'s entry if it is still the one the caller saw expire (another loop may have cached a newer one).
    func forget(_ key: [UInt8], ifUntil until: UInt64) {
        shard(for: key).table.withLock { table in
            if table[key] == until { table.removeValue(forKey: key) }
        }
    }

    /// Empties the cache (Redis may have restarted without its data).
    func removeAll() {
        for shard in shards { shard.table.withLock { $0.removeAll() } }
    }

    /// Keys held across all shards, expired ones included until their shard's next sweep (a snapshot, not atomic).
    var count: Int {
        shards.reduce(0) { sum, shard in sum + shard.table.withLock { $0.count } }
    }

    private func shard(for key: [UInt8]) -> Shard {
        if shards.count == 1 { return shards[0] }
        let h = UInt(bitPattern: key.hashValue)
        return shards[Int(truncatingIfNeeded: h >> shift)]
    }
}
