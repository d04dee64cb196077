/// One shard's buckets: a hash index into a flat entry array threaded on an intrusive LRU list.
///
/// Not thread-safe; `ShardedBuckets` keeps each table behind its own `Mutex`. Once `capacity` keys are held, a new
/// key reuses the least recently used entry in place, so a full table never allocates again (Swift's `Dictionary`
/// deletes by backward shift, without tombstones). Every lookup, admitted or not, makes the key most recent, as
/// nginx moves a node to the head of its queue on each lookup.
struct BucketTable<Key: Hashable & Sendable>: Sendable {
    /// One key's bucket and its LRU neighbours (indices into `entries`, -1 for none).
    struct Entry: Sendable {
        var key: Key
        var bucket: LeakyBucket
        var newer: Int32
        var older: Int32
    }

    private var index: [Key: Int32] = [:]
    private var entries: [Entry] = []
    /// Most recently used entry, or -1.
    private var newest: Int32 = -1
    /// Least recently used entry, or -1.
    private var oldest: Int32 = -1
    /// Keys held at most (at least 1).
    let capacity: Int

    /// An empty table for up to `capacity` keys; storage grows on demand up to that bound.
    init(capacity: Int) {
        self.capacity = max(1, min(capacity, Int(Int32.max)))
    }

    /// Keys currently held.
    var count: Int { entries.count }

    /// Whether `key` is held (does not touch the LRU order).
    func contains(_ key: Key) -> Bool { index[key] != nil }

    /// Applies one request for `key` at `now` under `policy`, creating or recycling an entry for a new key.
    mutating func check(_ key: Key, now: UInt64, policy: RatePolicy) -> RateDecision {
        if let found = index[key] {
            let i = Int(found)
            touch(found)
            return policy.admit(&entries[i].bucket, now: now)
        }
        let (bucket, decision) = policy.admitFresh(now: now)
        if entries.count < capacity {
            let slot = Int32(entries.count)
            entries.append(Entry(key: key, bucket: bucket, newer: -1, older: -1))
            index[key] = slot
            pushNewest(slot)
        } else {
            // Recycle the least recently used entry.
            let slot = oldest
            unlink(slot)
            index.removeValue(forKey: entries[Int(slot)].key)
            entries[Int(slot)] = Entry(key: key, bucket: bucket, newer: -1, older: -1)
            index[key] = slot
            pushNewest(slot)
        }
        return decision
    }

    /// Makes `slot` the most recently used entry.
    private mutating func touch(_ slot: Int32) {
        if slot == newest { return }
        unlink(slot)
        pushNewest(slot)
    }

    private mutating func unlink(_ slot: Int32) {
        let newer = entries[Int(slot)].newer
        let older = entries[Int(slot)].older
        if newer >= 0 { entries[Int(newer)].older = older } else { newest = older }
        if older >= 0 { entries[Int(older)].newer = newer } else { oldest = newer }
        entries[Int(slot)].newer = -1
        entries[Int(slot)].older = -1
    }

    private mutating func pushNewest(_ slot: Int32) {
        entries[Int(slot)].older = newest
        entries[Int(slot)].newer = -1
        if newest >= 0 { entries[Int(newest)].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }
}
