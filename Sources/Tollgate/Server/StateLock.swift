import Glibc
import Synchronization
import TollgateIO

/// The exclusive lock a running `tollgate serve` holds on its state directory, so that two servers never share one:
/// they would share its usage ledger and its fleet member id (`FleetMember`), and when Redis loses its data only one
/// of them would add its spending back to the fleet's quota balances.
///
/// The lock is `flock(LOCK_EX)` on `serve.lock` in the directory (0600, never followed if a link), holding the
/// locker's pid so that a refused start can name it. The kernel drops it when the process ends, however it ends, so
/// a crashed server leaves nothing to clean up; the file itself stays.
///
/// Within one process the lock is shared: every holder of one directory (the start-up and the `Server`, or several
/// servers as the tests run them) counts on one descriptor, recognised by the file's device and inode whatever path
/// names it. The lock is released when the last `StateLock` of the directory is deinitialised; a server keeps its
/// own until it is released, so in `tollgate serve` that is the process's exit.
///
/// The commands that edit the state database beside a running server (`tollgate keys`, `usage`) take no lock.
/// Removing `serve.lock` while a server runs defeats the check (a new file is locked anew). Start-up only (file I/O).
public final class StateLock: Sendable {
    /// The lock file's name in the state directory.
    public static let fileName = "serve.lock"

    /// The directory locked, as the caller named it.
    public let directory: String
    private let file: FileID

    /// The lock descriptors this process holds, each with how many `StateLock`s share it.
    private static let held = Mutex<[FileID: (fd: Int32, holders: Int)]>([:])

    private init(directory: String, file: FileID) {
        self.directory = directory
        self.file = file
    }

    deinit {
        StateLock.held.withLock { held in
            guard var entry = held[file] else { return }
            entry.holders -= 1
            if entry.holders > 0 {
                held[file] = entry
            } else {
                held[file] = nil
                // The file is left in place, emptied: removing it would let a third server lock a new file while a
                // second one still held the removed one.
                _ = ftruncate(entry.fd, 0)
                close(entry.fd)
            }
        }
    }

    /// Locks `directory` (created, mode 0700, when missing; its parent must exist) for this process. Throws
    /// `StateLockError.held` when another running process holds it, `.unusable` when the lock file cannot be
    /// opened or locked.
    public static func acquire(directory: String) throws(StateLockError) -> StateLock {
        let path = (directory.hasSuffix("/") ? directory : directory + "/") + fileName
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw .unusable("cannot create the state directory \(directory): \(Syscall.describe(errno))")
        }
        try checkOwnership(directory)
        return try held.withLock { held throws(StateLockError) -> StateLock in
            // O_NONBLOCK: a FIFO planted there must not hang the start (it is refused below).
            let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o600)
            guard fd >= 0 else {
                let code = errno
                if code == ELOOP { throw .unusable("\(path) is a link: remove it (the lock file is never followed)") }
                if code == EACCES {
                    throw .unusable("cannot open \(path): \(Syscall.describe(code)) (another user's: remove it when no "
                                    + "tollgate serve runs there)")
                }
                throw .unusable("cannot open \(path): \(Syscall.describe(code))")
            }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                let code = errno
                close(fd)
                throw .unusable("cannot read \(path): \(Syscall.describe(code))")
            }
            guard info.st_mode & S_IFMT == S_IFREG, info.st_nlink == 1, info.st_uid == geteuid() else {
                close(fd)
                throw .unusable("\(path) is not a plain file of this user (a link, or another owner's): remove it")
            }
            let id = FileID(info)
            if var entry = held[id] {
                close(fd)
                entry.holders += 1
                held[id] = entry
                return StateLock(directory: directory, file: id)
            }
            var locked: Int32
            repeat { locked = flock(fd, LOCK_EX | LOCK_NB) } while locked != 0 && errno == EINTR
            guard locked == 0 else {
                let code = errno
                let pid = code == EWOULDBLOCK ? holder(fd) : nil
                close(fd)
                if code == EWOULDBLOCK { throw .held(directory: directory, pid: pid) }
                throw .unusable("cannot lock \(path): \(Syscall.describe(code))")
            }
            if info.st_mode & 0o777 != 0o600 { fchmod(fd, 0o600) }
            // The pid only names the holder in another server's refusal: a failure to write it costs nothing else
            // (the refusal then says the pid is unknown).
            if ftruncate(fd, 0) == 0 { _ = Syscall.writeAll(fd, Array("\(getpid())\n".utf8)) }
            held[id] = (fd, 1)
            return StateLock(directory: directory, file: id)
        }
    }

    /// Refuses a state directory that another user owns or may write to: whoever can rename files in it can move
    /// the lock file aside while a server runs (and start a second beside it), plant another server's fleet member
    /// id, or hold a lock file of theirs while the server is down. A server run as root in the directory of the
    /// service's user is refused too: the database and the member id it would create there could not be opened by
    /// the service after; run it as that user.
    static func checkOwnership(_ directory: String) throws(StateLockError) {
        var info = stat()
        guard stat(directory, &info) == 0 else {
            throw .unusable("cannot read the state directory \(directory): \(Syscall.describe(errno))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw .unusable("the state directory \(directory) is not a directory") }
        let me = geteuid()
        guard info.st_uid == me else {
            throw .unusable("the state directory \(directory) belongs to uid \(info.st_uid), not to uid \(me) that runs "
                            + "tollgate serve: run the server as its owner (sudo -u), or give it the directory (chown)")
        }
        guard info.st_mode & 0o022 == 0 else {
            throw .unusable("the state directory \(directory) may be written by other users (mode "
                            + "\(String(info.st_mode & 0o7777, radix: 8))): chmod go-w \(directory)")
        }
    }

    /// The pid the lock's holder wrote into the open lock file `fd`; nil when it holds none (yet).
    private static func holder(_ fd: Int32) -> Int32? {
        var bytes = [UInt8](repeating: 0, count: 32)
        var count = 0
        reading: while count < bytes.count {
            switch Syscall.read(fd, into: &bytes, at: count, count: bytes.count - count) {
            case .bytes(let n): count += n
            case .eof, .wouldBlock, .failed: break reading
            }
        }
        let text = String(decoding: bytes[0..<count], as: UTF8.self).filter { !$0.isWhitespace }
        return Int32(text).flatMap { $0 > 0 ? $0 : nil }
    }

    /// The number of `StateLock`s in this process sharing `directory`'s lock (0: not held here). For tests.
    public static func holders(of directory: String) -> Int {
        let path = (directory.hasSuffix("/") ? directory : directory + "/") + fileName
        guard let id = FileID(path: path) else { return 0 }
        return held.withLock { $0[id]?.holders ?? 0 }
    }
}

extension StateLock {
    /// The lock on the directory of the state database at `databasePath`, for a server starting. Another process
    /// serving from the directory stops the start (the refusal names it and its pid); so does a lock file that
    /// cannot be made when `required` (the ledger is on: it could not be written there either). Otherwise that is
    /// said once through `warn`, and the server runs without the lock (nil).
    public static func forServer(databasePath: String, required: Bool,
                                 warn: (String) -> Void) throws(SocketError) -> StateLock? {
        let slash = databasePath.lastIndex(of: "/")
        let directory = slash.map { $0 == databasePath.startIndex ? "/" : String(databasePath[..<$0]) } ?? "."
        do {
            return try acquire(directory: directory)
        } catch {
            if case .unusable(let reason) = error, !required {
                if unusableSaid.exchange(true, ordering: .relaxed) == false {
                    warn("\(reason): another tollgate serve could share this state directory unnoticed")
                }
                return nil
            }
            throw SocketError(error.description)
        }
    }

    /// Whether a lock file that cannot be made was said already (once per process).
    private static let unusableSaid = Atomic<Bool>(false)
}

/// Why a state directory could not be locked.
public enum StateLockError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Another running process holds the lock: `pid`, when it wrote it.
    case held(directory: String, pid: Int32?)
    /// The lock file cannot be made, opened or locked (the reason, naming the path).
    case unusable(String)

    public var description: String {
        switch self {
        case .held(let directory, let pid):
            return "state directory \(directory) is in use by another running tollgate serve "
                + "(\(pid.map { "pid \($0)" } ?? "pid unknown")); give each server its own state-dir"
        case .unusable(let reason):
            return reason
        }
    }
}
