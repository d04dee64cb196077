import Glibc
import TollgateIO

/// Where the server's database lives and how it is opened: one SQLite file, `tollgate.db`, in the state directory
/// (the `state-dir` setting), shared by the usage ledger and the key table. Each part creates its own tables
/// (`CREATE TABLE IF NOT EXISTS`) on the connection it opens here.
///
/// Every function here may wait on the disk: call them from a thread of their own or at start-up, never on an
/// event loop.
public enum StateDatabase {
    /// The database's file name in the state directory.
    public static let fileName = "tollgate.db"
    /// The state directory's name beside the users file when `state-dir` is not set (the quick start).
    public static let defaultDirectoryName = "state"

    /// The state directory: `configured` (the `state-dir` setting) when set, else a folder `state` beside the users
    /// file (`usersPath`, or the quick start's `users.htpasswd` in the working directory).
    public static func directory(configured: String?, usersPath: String?) -> String {
        if let configured, !configured.isEmpty { return configured }
        let users = usersPath ?? "users.htpasswd"
        guard let slash = users.lastIndex(of: "/") else { return defaultDirectoryName }
        let parent = slash == users.startIndex ? "" : String(users[..<slash])
        return parent + "/" + defaultDirectoryName
    }

    /// The database file in `directory`.
    public static func path(in directory: String) -> String {
        (directory.hasSuffix("/") ? directory : directory + "/") + fileName
    }

    /// Opens the database at `path` for reading and writing: its directory created (mode 0700) when missing, the
    /// file created mode 0600, write-ahead logging on (so `tollgate usage` reads while the server writes).
    /// `busyTimeoutMillis`: how long a statement waits for another connection's lock.
    public static func openForWriting(_ path: String, busyTimeoutMillis: Int32 = 1000) throws(SQLiteError) -> SQLiteDatabase {
        try ensureDirectory(of: path)
        let db = try SQLiteDatabase(path: path, mode: .readWriteCreate(fileMode: 0o600),
                                    busyTimeoutMillis: busyTimeoutMillis)
        try db.enableWAL()
        // WAL with synchronous=NORMAL is durable across a process crash (only a power loss can lose the last
        // transactions) and saves an fsync per transaction.
        try db.exec("PRAGMA synchronous=NORMAL")
        return db
    }

    /// Opens the database at `path` read-only (for `tollgate usage` and `tollgate keys list`); the file must exist.
    public static func openForReading(_ path: String, busyTimeoutMillis: Int32 = 1000) throws(SQLiteError) -> SQLiteDatabase {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw SQLiteError.cannotOpen(path, Syscall.describe(errno))
        }
        return try SQLiteDatabase(path: path, mode: .readOnly, busyTimeoutMillis: busyTimeoutMillis)
    }

    /// Creates `path`'s directory, mode 0700, when it is missing (its parent must exist).
    static func ensureDirectory(of path: String) throws(SQLiteError) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let directory = String(path[..<slash])
        var info = stat()
        if stat(directory, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw SQLiteError.cannotOpen(path, "\(directory) is not a directory")
            }
            return
        }
        guard mkdir(directory, 0o700) == 0 || errno == EEXIST else {
            throw SQLiteError.cannotOpen(path, operation: "create the directory of",
                                         "mkdir \(directory): \(Syscall.describe(errno))")
        }
    }
}
