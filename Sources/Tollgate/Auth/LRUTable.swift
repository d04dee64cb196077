/// A bounded map from 32-byte keys to cached verdicts with least-recently-used eviction and expiry times.
///
/// Slots live in one array linked by indices, so a hit or an insert allocates nothing beyond the key itself.
/// Not thread-safe: `CredentialCache` guards it with a mutex.
struct LRUTable {
    private struct Slot {
        var key: [UInt8]
        var valid: Bool
        var expires: UInt64
        var newer: Int
        var older: Int
    }

    /// The most entries held; inserting past it evicts the least recently used.
    let capacity: Int
    private var slots: [Slot] = []
    private var index: [[UInt8]: Int] = [:]
    private var free: [Int] = []
    private var newest = -1
    private var oldest = -1
    /// Entries dropped to make room, since creation.
    private(set) var evictions = 0

    /// An empty table holding at most `capacity` entries (0 caches nothing).
    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// The number of entries held (expired ones included until touched or evicted).
    var count: Int { index.count }

    /// The verdict for `key` if present and not expired at `now`; marks it most recently used. An expired entry
    /// is removed.
    mutating func get(_ key: [UInt8], now: UInt64) -> Bool? {
        guard let i = index[key] else { return nil }
        if now >= slots[i].expires {
            remove(i)
            return nil
        }
        unlink(i)
        pushNewest(i)
        return slots[i].valid
    }

    /// Inserts or replaces `key`'s verdict, expiring at `expires`, as most recently used.
    mutating func set(_ key: [UInt8], valid: Bool, expires: UInt64) {
        guard capacity > 0 else { return }
        if let i = index[key] {
            slots[i].valid = valid
            slots[i].expires = expires
            unlink(i)
            pushNewest(i)
            return
        }
        if index.count >= capacity, oldest >= 0 {
            remove(oldest)
            evictions += 1
        }
        let slot = Slot(key: key, valid: valid, expires: expires, newer: -1, older: -1)
        let i: Int
        if let reused = free.popLast() {
            slots[reused] = slot
            i = reused
        } else {
            slots.append(slot)
            i = slots.count - 1
        }
        index[key] = i
        pushNewest(i)
    }

    /// Drops every entry.
    mutating func removeAll() {
        slots.removeAll()
        index.removeAll()
        free.removeAll()
        newest = -1
        oldest = -1
    }

    private mutating func remove(_ i: Int) {
        unlink(i)
        index[slots[i].key] = nil
        slots[i].key = []
        free.append(i)
    }

    private mutating func unlink(_ i: Int) {
        let newer = slots[i].newer
        let older = slots[i].older
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[i].newer = -1
        slots[i].older = -1
    }

    private mutating func pushNewest(_ i: Int) {
        slots[i].older = newest
        slots[i].newer = -1
        if newest >= 0 { slots[newest].newer = i }
        newest = i
        if oldest < 0 { oldest = i }
    }
}
