import Synchronization
import TollgateIO

/// The key table in the state database (`tollgate.db`): table `api_keys`, created if missing, its schema version in
/// `api_keys_schema` (a table of its own, so the key table's version never collides with the ledger's).
///
/// `api_keys_changes` holds one counter that triggers move in the transaction of every insert, delete or change
/// of a key (revocation included) but not of its last-use time: the watcher reloads the table only when it moved,
/// so neither the ledger's commits to the same database nor its own last-use writes make it reload. Triggers, not
/// the store's statements, move it, so any writer (an older `tollgate keys`, `sqlite3`) is seen too; the table and
/// triggers are added to an existing database on open, so the schema version stays 1.
///
/// One connection per store, used by one thread at a time (the key watcher's in the server, the command line's):
/// the lock only makes that a guarantee. Every call may wait on the disk, up to the busy timeout on another writer.
public final class SQLiteKeyStore: KeyStore {
    /// The schema this build reads and writes.
    public static let schemaVersion: Int64 = 1
    private let db: Mutex<Connection>
    /// The database file, for messages.
    public let path: String

    /// Opens (creating when `create`) the database at `path` and the key table in it.
    public init(path: String, create: Bool = true) throws(KeyStoreError) {
        self.path = path
        let connection: SQLiteDatabase
        do throws(SQLiteError) {
            connection = create ? try StateDatabase.openForWriting(path)
                : try SQLiteDatabase(path: path, mode: .readWrite, busyTimeoutMillis: 1000)
            try connection.transaction { () throws(SQLiteError) in
                try connection.exec("""
                    CREATE TABLE IF NOT EXISTS api_keys_schema (version INTEGER NOT NULL);
                    CREATE TABLE IF NOT EXISTS api_keys (
                        id TEXT PRIMARY KEY,
                        user TEXT NOT NULL,
                        name TEXT NOT NULL DEFAULT '',
                        hash TEXT NOT NULL,
                        created INTEGER NOT NULL,
                        expires INTEGER,
                        models TEXT NOT NULL DEFAULT '',
                        revoked INTEGER,
                        last_used INTEGER
                    );
                    CREATE TABLE IF NOT EXISTS api_keys_changes (count INTEGER NOT NULL);
                    INSERT INTO api_keys_changes (count) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM api_keys_changes);
                    CREATE TRIGGER IF NOT EXISTS api_keys_changed_insert AFTER INSERT ON api_keys
                        BEGIN UPDATE api_keys_changes SET count = count + 1; END;
                    CREATE TRIGGER IF NOT EXISTS api_keys_changed_update
                        AFTER UPDATE OF id, user, name, hash, created, expires, models, revoked ON api_keys
                        BEGIN UPDATE api_keys_changes SET count = count + 1; END;
                    CREATE TRIGGER IF NOT EXISTS api_keys_changed_delete AFTER DELETE ON api_keys
                        BEGIN UPDATE api_keys_changes SET count = count + 1; END;
                    """)
                let version = try connection.prepare("SELECT max(version) FROM api_keys_schema")
                let found = try version.step() ? version.int64(0) : nil
                version.reset()
                if let found, found > SQLiteKeyStore.schemaVersion {
                    throw SQLiteError(operation: "read", path: path, code: 0,
                                      message: "the key table has schema version \(found), newer than this tollgate's "
                                          + "(\(SQLiteKeyStore.schemaVersion)): upgrade tollgate")
                }
                if found == nil {
                    let insert = try connection.prepare("INSERT INTO api_keys_schema (version) VALUES (?)")
                    try insert.bind([.integer(SQLiteKeyStore.schemaVersion)])
                    try insert.run()
                }
            }
        } catch {
            throw KeyStoreError(error.description)
        }
        db = Mutex(Connection(database: connection))
    }

    private struct Connection: ~Copyable {
        let database: SQLiteDatabase
        /// The change counter's query, compiled at its first use and kept: the key watcher asks four times a second,
        /// and compiling it each time cost an idle server more than the query itself.
        var changeQuery: SQLiteStatement?
    }

    public func insert(_ key: APIKey) throws(KeyStoreError) {
        try run { db throws(SQLiteError) in
            let s = try db.prepare("""
                INSERT INTO api_keys (id, user, name, hash, created, expires, models, revoked, last_used)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            try s.bind([.text(key.id), .text(key.user), .text(key.name), .text(Self.hex(key.hash)),
                        .integer(key.created), .integer(key.expires), .text(key.models.joined(separator: ",")),
                        .integer(key.revoked), .integer(key.lastUsed)])
            try s.run()
        }
    }

    public func all() throws(KeyStoreError) -> [APIKey] {
        try run { db throws(SQLiteError) in
            let s = try db.prepare("""
                SELECT id, user, name, hash, created, expires, models, revoked, last_used FROM api_keys
                ORDER BY created, id
                """)
            var keys: [APIKey] = []
            while try s.step() {
                let models = s.text(6) ?? ""
                keys.append(APIKey(id: s.text(0) ?? "", user: s.text(1) ?? "", name: s.text(2) ?? "",
                                   hash: Self.bytes(hex: s.text(3) ?? ""), created: s.int64(4) ?? 0,
                                   expires: s.int64(5),
                                   models: models.isEmpty ? [] : models.split(separator: ",").map(String.init),
                                   revoked: s.int64(7), lastUsed: s.int64(8)))
            }
            return keys
        }
    }

    public func revoke(id: String, at time: Int64) throws(KeyStoreError) -> Bool {
        try run { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) in
                let s = try db.prepare("UPDATE api_keys SET revoked = coalesce(revoked, ?) WHERE id = ?")
                try s.bind([.integer(time), .text(id)])
                try s.run()
                return db.changes > 0
            }
        }
    }

    public func revoke(ids: Set<String>, at time: Int64) throws(KeyStoreError) -> Int {
        try run { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) in
                let s = try db.prepare("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL")
                var count = 0
                for id in ids.sorted() {
                    try s.bind([.integer(time), .text(id)])
                    try s.run()
                    count += db.changes
                }
                return count
            }
        }
    }

    public func recordLastUsed(_ times: [String: Int64]) throws(KeyStoreError) {
        try run { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) in
                let s = try db.prepare("UPDATE api_keys SET last_used = max(coalesce(last_used, 0), ?) WHERE id = ?")
                for (id, time) in times {
                    try s.bind([.integer(time), .text(id)])
                    try s.run()
                }
            }
        }
    }

    /// The change counter (`api_keys_changes`): it moves with every committed change to a key, whoever made it,
    /// and never with a last-use time or a commit to another table.
    public func changeToken() throws(KeyStoreError) -> Int64 {
        do throws(SQLiteError) {
            return try db.withLock { connection throws(SQLiteError) in
                let s: SQLiteStatement
                if let compiled = connection.changeQuery {
                    s = compiled
                } else {
                    s = try connection.database.prepare("SELECT max(count) FROM api_keys_changes")
                    connection.changeQuery = s
                }
                defer { s.reset() }
                return try s.step() ? s.int64(0) ?? 0 : 0
            }
        } catch {
            throw KeyStoreError(error.description)
        }
    }

    /// Closes the connection.
    public func close() {
        db.withLock { connection in
            connection.changeQuery = nil
            connection.database.close()
        }
    }

    private func run<T>(_ body: (SQLiteDatabase) throws(SQLiteError) -> T) throws(KeyStoreError) -> T {
        do throws(SQLiteError) {
            return try db.withLock { connection throws(SQLiteError) in try body(connection.database) }
        } catch {
            throw KeyStoreError(error.description)
        }
    }

    private static let digits = Array("0123456789abcdef".utf8)

    static func hex(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out += [digits[Int(b >> 4)], digits[Int(b & 15)]] }
        return String(decoding: out, as: UTF8.self)
    }

    static func bytes(hex: String) -> [UInt8] {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return [] }
        func nibble(_ c: UInt8) -> UInt8? { digits.firstIndex(of: c).map(UInt8.init) }
        var out: [UInt8] = []
        for i in stride(from: 0, to: chars.count, by: 2) {
            guard let h = nibble(chars[i]), let l = nibble(chars[i + 1]) else { return [] }
            out.append(h << 4 | l)
        }
        return out
    }
}
