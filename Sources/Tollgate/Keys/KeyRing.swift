import Glibc
import Synchronization

/// The key table as the event loops read it: an in-memory snapshot (id → user, hash, models, expiry, revoked),
/// replaced as a whole by the key watcher when the database changes, plus the last-use times collected for the
/// watcher to write in batches.
///
/// `verify` is one dictionary lookup under a short lock, one SHA-256 and one constant-time compare: cheap enough for
/// the loop, and never any I/O. Expiry is compared with `clock` on every use, so it is exact; a revocation is seen
/// as soon as the watcher's next poll replaces the snapshot. Thread-safe; one ring serves every worker.
public final class KeyRing: Sendable {
    struct Entry: Sendable {
        var user: String
        var hash: [UInt8]
        var models: Set<String>?
        var expires: Int64?
        var revoked: Bool
    }

    private let table = Mutex<[String: Entry]>([:])
    /// Ids revoked fleet-wide (through Redis): kept across snapshot replacements, until the database says so too.
    private let fleetRevoked = Mutex<Set<String>>([])
    private let used = Mutex<[String: Int64]>([:])
    private let version = Atomic<Int>(0)
    /// Seconds since the epoch (inject one in tests).
    let clock: @Sendable () -> Int64

    /// An empty ring. `clock` is wall-clock seconds since the epoch.
    public init(clock: @escaping @Sendable () -> Int64 = KeyRing.wallClock) {
        self.clock = clock
    }

    /// `time(nil)`.
    public static let wallClock: @Sendable () -> Int64 = { Int64(time(nil)) }

    /// Replaces the snapshot with `keys` (from the database).
    public func replace(with keys: [APIKey]) {
        var fresh: [String: Entry] = [:]
        fresh.reserveCapacity(keys.count)
        for key in keys {
            fresh[key.id] = Entry(user: key.user, hash: key.hash, models: key.models.isEmpty ? nil : Set(key.models),
                                  expires: key.expires, revoked: key.revoked != nil)
        }
        // Swapped inside the lock, the old table freed outside it (by `fresh` going out of scope): a large table's
        // deallocation must not hold up every key check on the loops.
        table.withLock { swap(&$0, &fresh) }
        version.add(1, ordering: .releasing)
    }

    /// Marks ids revoked fleet-wide (another server's `keys revoke`, through Redis), whatever this database says.
    public func revokeFleetWide(_ ids: Set<String>) {
        let changed = fleetRevoked.withLock { set -> Bool in
            guard !ids.isSubset(of: set) else { return false }
            set.formUnion(ids)
            return true
        }
        if changed { version.add(1, ordering: .releasing) }
    }

    /// Changes whenever the snapshot does (a connection that remembers a key login re-checks it then).
    public var generation: Int { version.load(ordering: .acquiring) }

    /// Keys in the snapshot.
    public var count: Int { table.withLock { $0.count } }

    /// The user `id` belongs to, if it is a key (for the failed-login throttle's key before the check).
    public func owner(of id: String) -> String? {
        table.withLock { $0[id]?.user }
    }

    /// Checks a presented key: the secret first, then revocation and expiry (against the clock now). A valid key's
    /// use is noted for `takeLastUsed`.
    public func verify(_ token: APIKeyToken) -> KeyVerdict {
        guard let entry = table.withLock({ $0[token.id] }) else {
            // The same work as for a known id, so timing does not tell which ids exist (they are not secret, but
            // there is no reason to help).
            _ = KeyHash.matches(token.bytes, stored: KeyRing.nothing)
            return .unknown
        }
        guard KeyHash.matches(token.bytes, stored: entry.hash) else { return .wrongSecret(user: entry.user) }
        return verdict(token.id, entry)
    }

    /// A key verified earlier on a connection, checked again without its secret: still in force (not revoked,
    /// not expired)? Then its grant, and its use is noted.
    public func recheck(_ id: String) -> KeyGrant? {
        guard let entry = table.withLock({ $0[id] }), case .valid(let grant) = verdict(id, entry) else { return nil }
        return grant
    }

    private func verdict(_ id: String, _ entry: Entry) -> KeyVerdict {
        if entry.revoked || fleetRevoked.withLock({ $0.contains(id) }) { return .revoked(user: entry.user) }
        let now = clock()
        if let expires = entry.expires, now >= expires { return .expired(user: entry.user) }
        noteUse(id, now)
        return .valid(KeyGrant(id: id, user: entry.user, models: entry.models))
    }

    private func noteUse(_ id: String, _ now: Int64) {
        used.withLock { $0[id] = now }
    }

    /// The last-use times noted since the last call (id → seconds), for the watcher to write; clears them.
    public func takeLastUsed() -> [String: Int64] {
        used.withLock { times in
            defer { times.removeAll(keepingCapacity: true) }
            return times
        }
    }

    private static let nothing = [UInt8](repeating: 0, count: 32)
}
