import CSQLite
import Glibc

/// A connection to an SQLite database file (the system libsqlite3), behind a safe API: open, `exec`, prepared
/// statements, transactions. The usage ledger and the key table are built on it.
///
/// Threads: Debian's libsqlite3 is built serialized (`SQLITE_THREADSAFE=1`), so a connection may be handed between
/// threads; still, use each from one thread at a time (a statement's bindings and its step are not one call), and
/// never from an event loop: every call may wait on the disk or, up to the busy timeout, on another connection's lock.
///
/// Ownership: the connection is closed by `close()` or when the object goes away; statements still alive keep it
/// open until they are finalized too (`sqlite3_close_v2`).
public final class SQLiteDatabase: @unchecked Sendable {
    /// How the file is opened.
    public enum OpenMode: Sendable {
        /// Reading only; the file must exist. Readers of a WAL database see the last committed state while a writer
        /// keeps writing.
        case readOnly
        /// Reading and writing; the file must exist.
        case readWrite
        /// Reading and writing, creating the file (with `fileMode`) when it is missing.
        case readWriteCreate(fileMode: mode_t)
    }

    /// The file's path, as given (every error names it).
    public let path: String
    private var handle: OpaquePointer?

    /// Opens `path`. `busyTimeoutMillis`: how long a statement waits for another connection's lock before it fails
    /// with `SQLITE_BUSY` (0: fails at once). A file created here gets `fileMode` exactly (SQLite would otherwise
    /// create it 0644 less the umask; its `-wal` and `-shm` files copy the database's mode).
    public init(path: String, mode: OpenMode, busyTimeoutMillis: Int32 = 0) throws(SQLiteError) {
        self.path = path
        // No mutex of SQLite's own around each call: a connection is used from one thread at a time (above).
        var flags = SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX
        switch mode {
        case .readOnly:
            flags |= SQLITE_OPEN_READONLY
        case .readWrite:
            flags |= SQLITE_OPEN_READWRITE
        case .readWriteCreate(let fileMode):
            flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
            // Created empty by us first, so that the mode is ours; an existing file (or link) is left as it is.
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, fileMode)
            if fd >= 0 {
                fchmod(fd, fileMode)
                Glibc.close(fd)
            } else if errno != EEXIST {
                throw SQLiteError(operation: "create", path: path, code: SQLITE_CANTOPEN,
                                  message: Syscall.describe(errno))
            }
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(db)
            throw SQLiteError(operation: "open", path: path, code: rc, message: message)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMillis)
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Closes the connection now (statements still alive close it when they are finalized). Idempotent.
    public func close() {
        sqlite3_close_v2(handle)
        handle = nil
    }

    /// Runs one or more statements that return no rows (schema, pragmas, BEGIN/COMMIT).
    public func exec(_ sql: String) throws(SQLiteError) {
        let db = try open()
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error("execute", rc) }
    }

    /// Compiles `sql` into a statement for this connection; bind, step, read columns, reset, step again.
    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        let db = try open()
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(db, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error("prepare", rc) }
        return SQLiteStatement(statement, database: self)
    }

    /// Switches the database to write-ahead logging (readers do not block the writer nor the writer them); needs
    /// a writable connection. Returns the journal mode now in force.
    @discardableResult
    public func enableWAL() throws(SQLiteError) -> String {
        let statement = try prepare("PRAGMA journal_mode=WAL")
        guard try statement.step() else { return "" }
        let mode = statement.text(0) ?? ""
        guard mode.lowercased() == "wal" else {
            throw SQLiteError(operation: "enable WAL on", path: path, code: SQLITE_ERROR,
                              message: "the journal mode stayed \(mode)")
        }
        return mode
    }

    /// How a transaction takes its lock.
    public enum TransactionKind: String, Sendable {
        /// At the first read or write (`BEGIN`).
        case deferred = "BEGIN"
        /// The write lock at once (`BEGIN IMMEDIATE`): a busy database fails the BEGIN, not a statement halfway.
        case immediate = "BEGIN IMMEDIATE"
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it (or the commit) throws.
    public func transaction<T>(_ kind: TransactionKind = .immediate,
                               _ body: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try exec(kind.rawValue)
        do {
            let result = try body()
            try exec("COMMIT")
            return result
        } catch {
            // A failed COMMIT may leave the transaction open (SQLITE_BUSY) or already rolled back (a full disk).
            if let db = handle, sqlite3_get_autocommit(db) == 0 { sqlite3_exec(db, "ROLLBACK", nil, nil, nil) }
            throw error
        }
    }

    /// Rows changed by the latest INSERT, UPDATE or DELETE on this connection.
    public var changes: Int {
        handle.map { Int(sqlite3_changes64($0)) } ?? 0
    }

    /// The rowid of the latest successful INSERT on this connection.
    public var lastInsertRowID: Int64 {
        handle.map { sqlite3_last_insert_rowid($0) } ?? 0
    }

    private func open() throws(SQLiteError) -> OpaquePointer {
        guard let handle else {
            throw SQLiteError(operation: "use", path: path, code: SQLITE_MISUSE, message: "the connection is closed")
        }
        return handle
    }

    /// The connection's error for result `rc` of `operation`.
    func error(_ operation: String, _ rc: Int32) -> SQLiteError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        return SQLiteError(operation: operation, path: path, code: rc, message: message)
    }
}

/// A compiled statement of one `SQLiteDatabase`. Parameters are numbered from 1 (`?` in order), columns from 0.
///
/// Finalized when the object goes away; use it from the thread that uses its database. A statement stepped but not
/// to its end keeps its read (or write) transaction open until `reset`: `run` resets; a SELECT read only partly
/// must be reset by the caller, or nothing the connection writes in autocommit mode is committed.
public final class SQLiteStatement: @unchecked Sendable {
    private let statement: OpaquePointer
    private let database: SQLiteDatabase

    init(_ statement: OpaquePointer, database: SQLiteDatabase) {
        self.statement = statement
        self.database = database
    }

    deinit {
        sqlite3_finalize(statement)
    }

    /// Binds parameter `index` (from 1) to `value`.
    public func bind(_ index: Int32, _ value: SQLiteValue) throws(SQLiteError) {
        let rc: Int32
        switch value {
        case .integer(let v): rc = sqlite3_bind_int64(statement, index, v)
        case .real(let v): rc = sqlite3_bind_double(statement, index, v)
        case .null: rc = sqlite3_bind_null(statement, index)
        case .text(let v):
            var text = v
            rc = text.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    // An empty string's buffer may have no address, and SQLite binds a null pointer as NULL, not "".
                    guard let base = chars.baseAddress else {
                        return sqlite3_bind_text(statement, index, "", 0, csqlite_transient())
                    }
                    return sqlite3_bind_text(statement, index, base, Int32(chars.count), csqlite_transient())
                }
            }
        }
        guard rc == SQLITE_OK else { throw database.error("bind parameter \(index) for", rc) }
    }

    /// Binds every parameter in order, from 1.
    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        for (i, value) in values.enumerated() { try bind(Int32(i + 1), value) }
    }

    /// Advances: true when a row is ready to read, false when the statement is done. Throws the database's error
    /// (busy, read-only, full, constraint, ...).
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(statement)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = database.error("write or read", rc)
            sqlite3_reset(statement)
            throw error
        }
    }

    /// Steps to the end (for INSERT, UPDATE, DELETE), then resets the statement and clears its bindings.
    public func run() throws(SQLiteError) {
        defer { reset() }
        while try step() {}
    }

    /// Makes the statement ready to run again (bindings stay until `clearBindings`).
    public func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    /// Columns in a result row.
    public var columnCount: Int32 { sqlite3_column_count(statement) }

    /// Column `index`'s value in the current row, typed as SQLite stored it.
    public func value(_ index: Int32) -> SQLiteValue {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, index))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, index))
        case SQLITE_NULL: return .null
        default: return text(index).map(SQLiteValue.text) ?? .null
        }
    }

    /// Column `index` as an integer; nil when NULL.
    public func int64(_ index: Int32) -> Int64? {
        isNull(index) ? nil : sqlite3_column_int64(statement, index)
    }

    /// Column `index` as a double; nil when NULL.
    public func double(_ index: Int32) -> Double? {
        isNull(index) ? nil : sqlite3_column_double(statement, index)
    }

    /// Column `index` as text (UTF-8, invalid bytes replaced); nil when NULL.
    public func text(_ index: Int32) -> String? {
        guard let bytes = sqlite3_column_text(statement, index) else { return nil }
        let count = Int(sqlite3_column_bytes(statement, index))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// `body` with column `index`'s text as its bytes (as stored, not copied: valid during `body` only), or nil
    /// when NULL.
    public func withText<R>(_ index: Int32, _ body: (UnsafeBufferPointer<UInt8>?) -> R) -> R {
        if isNull(index) { return body(nil) }
        let text = sqlite3_column_text(statement, index)
        let count = Int(sqlite3_column_bytes(statement, index))
        return body(UnsafeBufferPointer(start: text, count: count))
    }

    /// Whether column `index` is NULL in the current row.
    public func isNull(_ index: Int32) -> Bool {
        sqlite3_column_type(statement, index) == SQLITE_NULL
    }
}

/// One SQLite value, as bound or read.
public enum SQLiteValue: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case null

    /// `.integer`, or `.null` for nil.
    public static func integer(_ v: Int64?) -> SQLiteValue { v.map { .integer($0) } ?? .null }
    /// `.text`, or `.null` for nil.
    public static func text(_ v: String?) -> SQLiteValue { v.map { .text($0) } ?? .null }
}

/// A failed SQLite call: what was being done, the file, SQLite's result code and message.
public struct SQLiteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was being done ("open", "prepare", "execute", ...).
    public var operation: String
    /// The database file.
    public var path: String
    /// SQLite's extended result code (`code & 0xFF` is the primary one).
    public var code: Int32
    /// SQLite's message (`sqlite3_errmsg`), or the system's for a file Tollgate created itself.
    public var message: String

    public init(operation: String, path: String, code: Int32, message: String) {
        self.operation = operation
        self.path = path
        self.code = code
        self.message = message
    }

    /// A failure to open `path` found before SQLite was asked (a missing file, a directory that cannot be made).
    public static func cannotOpen(_ path: String, operation: String = "open", _ message: String) -> SQLiteError {
        SQLiteError(operation: operation, path: path, code: SQLITE_CANTOPEN, message: message)
    }

    public var description: String { "cannot \(operation) \(path): \(message)" }

    /// Why, in a word fit for a metric label: `busy` (another connection holds the lock), `readonly`, `full` (the
    /// disk or the file's size limit), `io`, `corrupt`, `cantopen`, or `error`.
    public var reason: String {
        switch code & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED: return "busy"
        case SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH: return "readonly"
        case SQLITE_FULL: return "full"
        case SQLITE_IOERR: return "io"
        case SQLITE_CORRUPT, SQLITE_NOTADB: return "corrupt"
        case SQLITE_CANTOPEN: return "cantopen"
        default: return "error"
        }
    }
}
