import Synchronization

/// A key store in memory, for tests: the same contract as the database's, with `changeToken` moving on every change
/// made through `insert` and `revoke` (as the key table's change counter moves in the database).
public final class InMemoryKeyStore: KeyStore {
    private let state = Mutex<(keys: [APIKey], version: Int64)>(([], 0))

    /// An empty store.
    public init() {}

    public func insert(_ key: APIKey) throws(KeyStoreError) {
        let clash = state.withLock { s -> Bool in
            if s.keys.contains(where: { $0.id == key.id }) { return true }
            s.keys.append(key)
            s.version += 1
            return false
        }
        if clash { throw KeyStoreError("key id \(key.id) exists") }
    }

    public func all() throws(KeyStoreError) -> [APIKey] {
        state.withLock { $0.keys }
    }

    public func revoke(id: String, at time: Int64) throws(KeyStoreError) -> Bool {
        state.withLock { s in
            guard let i = s.keys.firstIndex(where: { $0.id == id }) else { return false }
            if s.keys[i].revoked == nil {
                s.keys[i].revoked = time
                s.version += 1
            }
            return true
        }
    }

    public func revoke(ids: Set<String>, at time: Int64) throws(KeyStoreError) -> Int {
        state.withLock { s in
            var count = 0
            for i in s.keys.indices where s.keys[i].revoked == nil && ids.contains(s.keys[i].id) {
                s.keys[i].revoked = time
                count += 1
            }
            if count > 0 { s.version += 1 }
            return count
        }
    }

    public func recordLastUsed(_ times: [String: Int64]) throws(KeyStoreError) {
        // Like the database's own writes, this does not move the change token: the watcher need not reload for it.
        state.withLock { s in
            for i in s.keys.indices {
                if let t = times[s.keys[i].id], t > (s.keys[i].lastUsed ?? .min) { s.keys[i].lastUsed = t }
            }
        }
    }

    public func changeToken() throws(KeyStoreError) -> Int64 {
        state.withLock { $0.version }
    }
}
