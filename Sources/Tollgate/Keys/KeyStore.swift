/// Where keys are kept: the `api_keys` table of the server's SQLite database (`SQLiteKeyStore`), or memory in
/// tests (`InMemoryKeyStore`).
///
/// Every call may block on I/O: call it from the key watcher's thread or the command line, never from an event
/// loop (the loops read the watcher's in-memory snapshot, `KeyRing`).
public protocol KeyStore: AnyObject, Sendable {
    /// Adds a new key. Throws when the id exists (a new random id is then drawn by the caller).
    func insert(_ key: APIKey) throws(KeyStoreError)
    /// Every key, revoked and expired ones included, oldest first.
    func all() throws(KeyStoreError) -> [APIKey]
    /// Marks `id` revoked at `time`; false when there is no such key (revoking twice keeps the first time).
    func revoke(id: String, at time: Int64) throws(KeyStoreError) -> Bool
    /// Marks every id of `ids` that is not revoked yet revoked at `time`, in one transaction (the fleet's
    /// revocations, kept in this database so a restart without Redis still refuses them); unknown ids are skipped.
    /// Returns how many keys it revoked.
    func revoke(ids: Set<String>, at time: Int64) throws(KeyStoreError) -> Int
    /// Records when keys were last used (id → seconds since the epoch), never moving a time backwards.
    func recordLastUsed(_ times: [String: Int64]) throws(KeyStoreError)
    /// A value that changes whenever another writer (the command line, another process) changed the keys since the
    /// last call: the watcher reloads the table only then.
    func changeToken() throws(KeyStoreError) -> Int64
}

/// A key store that failed: the message names the database and what went wrong.
public struct KeyStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public var description: String

    /// Creates an error.
    public init(_ description: String) {
        self.description = description
    }
}
