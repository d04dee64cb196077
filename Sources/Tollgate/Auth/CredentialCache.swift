import Synchronization
import TollgateIO

/// The verified-credential cache: remembers both "right" and "wrong" for a (user, stored hash, password) triple,
/// so a returning client, or a repeated wrong password, costs no hashing at all.
///
/// Keys are `HMAC-SHA-256(secret, user 0x00 storedHash 0x00 password)` with a per-process random secret: the
/// password is never stored, and an entry stops matching the moment that user's line changes or disappears.
/// Bounded to `maxEntries` fixed-size entries (so bounded in memory too) with LRU eviction, each living
/// `ttlNanos`. Thread-safe; every operation takes one short lock.
public final class CredentialCache: Sendable {
    /// The most entries held.
    public let maxEntries: Int
    /// How long an entry lives, in the injected clock's nanoseconds.
    public let ttlNanos: UInt64
    private let secret: [UInt8]
    private let table: Mutex<LRUTable>

    /// A cache of at most `maxEntries` entries living `ttlNanos` each. `key` is the HMAC secret; nil (the normal
    /// case) draws 32 random bytes, so keys mean nothing outside this process.
    public init(maxEntries: Int = 10_000, ttlNanos: UInt64 = 300_000_000_000, key: [UInt8]? = nil) {
        self.maxEntries = maxEntries
        self.ttlNanos = ttlNanos
        self.secret = key ?? Syscall.randomBytes(32)
        self.table = Mutex(LRUTable(capacity: maxEntries))
    }

    /// The cached verdict for `key` at monotonic time `now`: true = known good, false = known bad, nil = unknown
    /// or expired.
    public func lookup(_ key: [UInt8], now: UInt64) -> Bool? {
        table.withLock { $0.get(key, now: now) }
    }

    /// Remembers `valid` for `key` from `now` for `ttlNanos`, evicting the least recently used entry when full.
    public func store(_ key: [UInt8], valid: Bool, now: UInt64) {
        let expires = now.addingReportingOverflow(ttlNanos)
        table.withLock { $0.set(key, valid: valid, expires: expires.overflow ? .max : expires.partialValue) }
    }

    /// Forgets everything (e.g. on an operator's request).
    public func removeAll() {
        table.withLock { $0.removeAll() }
    }

    /// The number of entries held.
    public var count: Int {
        table.withLock { $0.count }
    }

    /// Entries evicted to make room since creation.
    public var evictions: Int {
        table.withLock { $0.evictions }
    }

    /// This cache's key for a check of `password` as `user` against `storedHash`.
    public func makeKey(user: String, storedHash: String, password: [UInt8]) -> [UInt8] {
        Self.makeKey(secret: secret, user: user, storedHash: storedHash, password: password)
    }

    /// `HMAC-SHA-256(secret, user 0x00 storedHash 0x00 password)`. User names and hashes never contain NUL, so the
    /// encoding is unambiguous.
    public static func makeKey(secret: [UInt8], user: String, storedHash: String, password: [UInt8]) -> [UInt8] {
        var message: [UInt8] = []
        message.reserveCapacity(user.utf8.count + storedHash.utf8.count + password.count + 2)
        message += user.utf8
        message.append(0)
        message += storedHash.utf8
        message.append(0)
        message += password
        let mac = Digest.hmacSHA256(key: secret, message)
        // Best effort: this buffer held the password.
        for i in message.indices { message[i] = 0 }
        return mac
    }
}
