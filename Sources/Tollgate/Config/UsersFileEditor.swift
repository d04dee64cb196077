import Glibc
import TollgateIO

/// Edits a users file for `tollgate users` and the first-run bootstrap: adds, replaces or removes one user's line,
/// keeping every other line (comments included) as it was, and writes atomically (temp file + rename, keeping an
/// existing file's owner and mode), so the running server's watcher sees one complete new version. It leaves no
/// other file behind.
public enum UsersFileEditor {
    public struct EditError: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// A random password of `length` characters from an unambiguous alphabet (~5.9 bits each).
    public static func generatePassword(length: Int = 24) -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var out = ""
        var bytes = Syscall.randomBytes(length * 2)
        var i = 0
        while out.count < length {
            if i == bytes.count { bytes = Syscall.randomBytes(length * 2); i = 0 }
            let b = Int(bytes[i])
            i += 1
            // Rejection sampling keeps the characters uniform.
            if b < 256 - 256 % alphabet.count { out.append(alphabet[b % alphabet.count]) }
        }
        return out
    }

    /// The bcrypt cost of passwords set by `tollgate users` and of the first user `serve` generates.
    public static let defaultCost = 12

    /// Entered passwords shorter than this (in characters) are refused unless the caller allows weak ones.
    public static let minimumPasswordLength = 12

    /// Why `password` is too weak to set for `user`, or nil when it is acceptable.
    public static func weakness(of password: String, user: String) -> String? {
        if password.count < minimumPasswordLength {
            return "the password is too short (\(password.count) characters; at least \(minimumPasswordLength))"
        }
        if password == user { return "the password is the user name" }
        return nil
    }

    /// Whether the user must already exist (`passwd`), must not (`add`), or either.
    public enum Presence: Sendable { case any, mustExist, mustNotExist }

    /// Sets `user`'s password (bcrypt `$2y$` at `cost`), adding the user if new; any further lines of the user
    /// (duplicates, which disable it) are removed. Creates the file (0640) if missing. Refuses a weak password (see
    /// `weakness(of:user:)`) unless `allowWeakPassword`. Holds the lock of `withLock` for the read-modify-write,
    /// so two admins cannot lose each other's edits.
    public static func setPassword(path: String, user: String, password: String, cost: Int = defaultCost,
                                   presence: Presence = .any, allowWeakPassword: Bool = false) throws(EditError) {
        guard !user.isEmpty, !user.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ":") }) else {
            throw EditError("user name \(user.debugDescription) must be non-empty without spaces, colons or control characters")
        }
        guard (4...17).contains(cost) else { throw EditError("bcrypt cost must be 4...17") }
        guard password.utf8.count <= PasswordVerifier.maxPasswordBytes else {
            throw EditError("the password is longer than \(PasswordVerifier.maxPasswordBytes) bytes, which no login is checked against")
        }
        if !allowWeakPassword, let weakness = weakness(of: password, user: user) {
            throw EditError("\(weakness): choose a longer one, use --generate, or give --allow-weak-password")
        }
        try withLock(path) { () throws(EditError) in
            try setPasswordLocked(path: path, user: user, password: password, cost: cost, presence: presence)
        }
    }

    /// Checks `password` against `user`'s line (any supported format); false for a wrong password. An unknown user,
    /// or one whose line Tollgate cannot use, is an error saying so.
    public static func verify(path: String, user: String, password: String) throws(EditError) -> Bool {
        let users: UsersFile
        do { users = try UsersFile.load(path: path) } catch { throw EditError(error.description) }
        guard let entry = users.entries[user] else {
            if let line = users.disabled.first(where: { $0.user == user }) {
                throw EditError("\(path):\(line.line): user \(user.debugDescription) cannot log in: \(line.reason)")
            }
            throw EditError("\(path): no user \(user.debugDescription)")
        }
        return PasswordVerifier.verify(password: Array(password.utf8), against: entry.hash, format: entry.format)
    }

    private static func setPasswordLocked(path: String, user: String, password: String, cost: Int,
                                          presence: Presence) throws(EditError) {
        var lines = try readLines(path, missingOK: presence != .mustExist)
        let existing = lines.indices.filter { lineUser(lines[$0]) == user }
        if let first = existing.first, presence == .mustNotExist {
            throw EditError("\(path):\(first + 1): user \(user.debugDescription) already exists "
                + "(change its password with: tollgate users passwd \(user))")
        }
        if existing.isEmpty, presence == .mustExist {
            throw EditError("\(path): no user \(user.debugDescription) (add it with: tollgate users add \(user))")
        }
        guard let hash = PasswordCrypt.bcrypt(password: Array(password.utf8), cost: cost) else {
            throw EditError("libcrypt could not produce a bcrypt hash")
        }
        let newLine = "\(user):\(hash)"
        if let first = existing.first {
            lines[first] = newLine
            for i in existing.dropFirst().reversed() { lines.remove(at: i) }
        } else {
            lines.append(newLine)
        }
        try write(path, lines)
    }

    /// Removes `user` (every line of it); an error if there is no such user.
    public static func remove(path: String, user: String) throws(EditError) {
        try withLock(path) { () throws(EditError) in try removeLocked(path: path, user: user) }
    }

    private static func removeLocked(path: String, user: String) throws(EditError) {
        var lines = try readLines(path, missingOK: false)
        let before = lines.count
        lines.removeAll { lineUser($0) == user }
        guard lines.count < before else { throw EditError("\(path): no user \(user.debugDescription)") }
        try write(path, lines)
    }

    /// Runs body holding an exclusive flock on `PATH.lock`, created beside the file and removed again before the
    /// lock is released, so no lock file stays behind. A waiter that wakes up holding the lock of a file already
    /// removed (its path now missing or another file) opens the path again, so two editors never both hold a lock.
    private static func withLock(_ path: String, _ body: () throws(EditError) -> Void) throws(EditError) {
        let lockPath = path + ".lock"
        while true {
            let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw EditError("cannot open lock file \(lockPath): \(Syscall.describe(errno))") }
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR {
                    let e = errno
                    Syscall.close(fd)
                    throw EditError("cannot lock \(lockPath): \(Syscall.describe(e))")
                }
            }
            var held = stat(), named = stat()
            guard fstat(fd, &held) == 0, stat(lockPath, &named) == 0, held.st_dev == named.st_dev,
                  held.st_ino == named.st_ino else {
                Syscall.close(fd)
                continue
            }
            defer {
                unlink(lockPath)
                Syscall.close(fd)
            }
            try body()
            return
        }
    }

    private static func lineUser(_ line: String) -> String? {
        let t = line.drop { $0 == " " || $0 == "\t" }
        guard !t.hasPrefix("#"), let colon = t.firstIndex(of: ":") else { return nil }
        return String(t[..<colon])
    }

    private static func readLines(_ path: String, missingOK: Bool) throws(EditError) -> [String] {
        if access(path, F_OK) != 0 {
            if missingOK { return [] }
            throw EditError("\(path) does not exist")
        }
        let bytes: [UInt8]
        do { bytes = try UsersFile.readFile(path) } catch { throw EditError(error.description) }
        var lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    private static func write(_ path: String, _ lines: [String]) throws(EditError) {
        let temp = path + ".tmp-\(getpid())"
        // A new file is 0640 (the server's group reads it); an existing one keeps its owner, group and mode.
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw EditError("cannot create \(temp): \(Syscall.describe(errno))") }
        // Keep the file's owner, group and mode (the server's user must still be able to read it after an edit).
        var info = stat()
        if stat(path, &info) == 0 {
            _ = fchown(fd, info.st_uid, info.st_gid)
            _ = fchmod(fd, info.st_mode & 0o7777)
        } else {
            _ = fchmod(fd, 0o640)
        }
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        if let e = Syscall.writeAll(fd, text) {
            Syscall.close(fd)
            unlink(temp)
            throw EditError("cannot write \(temp): \(Syscall.describe(e))")
        }
        fsync(fd)
        Syscall.close(fd)
        guard rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw EditError("cannot replace \(path): \(Syscall.describe(e))")
        }
    }
}
