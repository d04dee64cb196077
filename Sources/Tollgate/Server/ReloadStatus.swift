import Glibc
import TollgateIO

/// The outcome of a running server's latest configuration load, kept as a small file in its state directory so that
/// `tollgate reload` can report what the server did with a SIGHUP (and exit non-zero when the reload failed).
///
/// Generation 0 is the start; each SIGHUP adds one, whether the reload succeeded or not. The file is
/// `pid N`, `generation N`, `result ok|error` lines, then the messages, one per line; it is replaced atomically.
public struct ReloadStatus: Sendable, Equatable {
    /// The server's process id.
    public var pid: Int32
    /// 0 at start, one more per reload.
    public var generation: Int
    /// Whether that load was applied.
    public var ok: Bool
    /// What the server said about it (on failure, the problems, each naming file and line).
    public var messages: [String]

    /// The file's name in the state directory.
    public static let fileName = "tollgate.status"

    public init(pid: Int32, generation: Int, ok: Bool, messages: [String]) {
        self.pid = pid
        self.generation = generation
        self.ok = ok
        self.messages = messages
    }

    /// The state directory: `stateDir` (the `state-dir` setting) if set, else systemd's `$RUNTIME_DIRECTORY` (the
    /// unit's RuntimeDirectory), else the pid file's directory, else `/run/tollgate` when it exists; nil when none.
    /// The server writes its status there.
    public static func directory(stateDir: String?, pidFile: String?, environment: [String: String]) -> String? {
        candidates(stateDir: stateDir, pidFile: pidFile, environment: environment).first
    }

    /// Where the server may have put its status, most likely first: `directory`'s choice, then (unless `stateDir`
    /// is set) the ones it would take in another environment. `tollgate reload`, run from an admin's shell without
    /// systemd's variables, takes the first that holds a status file.
    public static func candidates(stateDir: String?, pidFile: String?, environment: [String: String]) -> [String] {
        if let stateDir, !stateDir.isEmpty { return [stateDir] }
        var found: [String] = []
        if let runtime = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first, !runtime.isEmpty {
            found.append(String(runtime))
        }
        if let pidFile, !pidFile.isEmpty {
            if let slash = pidFile.lastIndex(of: "/") {
                found.append(slash == pidFile.startIndex ? "/" : String(pidFile[..<slash]))
            } else {
                found.append(".")
            }
        }
        var info = stat()
        if stat("/run/tollgate", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { found.append("/run/tollgate") }
        var unique: [String] = []
        for d in found where !unique.contains(d) { unique.append(d) }
        return unique
    }

    /// The file's text.
    public var text: String {
        (["pid \(pid)", "generation \(generation)", "result \(ok ? "ok" : "error")"] + messages)
            .joined(separator: "\n") + "\n"
    }

    /// Parses the file's text; nil when it is not one.
    public init?(text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3, lines[0].hasPrefix("pid "), let pid = Int32(lines[0].dropFirst(4)),
              lines[1].hasPrefix("generation "), let generation = Int(lines[1].dropFirst(11)),
              lines[2] == "result ok" || lines[2] == "result error" else { return nil }
        var messages = Array(lines.dropFirst(3))
        if messages.last == "" { messages.removeLast() }
        self.init(pid: pid, generation: generation, ok: lines[2] == "result ok", messages: messages)
    }

    /// Writes the file into `directory` atomically (a temporary file renamed over it), mode 0600: its messages may
    /// quote the configuration, and `tollgate reload` runs as the server's user or as root. A file or link already
    /// at the temporary name is removed first and never followed.
    public func write(to directory: String) throws(SocketError) {
        let path = directory + "/" + ReloadStatus.fileName
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SocketError("cannot write \(temporary): \(Syscall.describe(errno))") }
        if let error = Syscall.writeAll(fd, Array(text.utf8)) ?? (fsync(fd) == 0 ? nil : errno) {
            close(fd)
            unlink(temporary)
            throw SocketError("cannot write \(temporary): \(Syscall.describe(error))")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw SocketError("cannot rename \(temporary) to \(path): \(Syscall.describe(code))")
        }
    }

    /// Reads the file from `directory`; nil when it is missing or not one.
    public static func read(from directory: String) -> ReloadStatus? {
        guard case .success(let bytes) = Syscall.readWholeFile(directory + "/" + fileName, limit: 1 << 20) else {
            return nil
        }
        return ReloadStatus(text: String(decoding: bytes, as: UTF8.self))
    }

    /// What `pid` is, before `tollgate reload` signals it.
    public enum Target: Sendable, Equatable {
        /// A running tollgate server, run by `uid`.
        case server(uid: uid_t)
        /// No such process.
        case notRunning
        /// A running process that is not a tollgate server.
        case other
    }

    /// Whether `pid` is a running tollgate server: its executable is this one (the same file), or, where that cannot
    /// be compared (replaced by an upgrade, not readable), it is named tollgate and runs `serve`.
    public static func target(_ pid: Int32) -> Target {
        var info = stat()
        guard pid > 0, stat("/proc/\(pid)", &info) == 0 else { return .notRunning }
        let uid = info.st_uid
        var exe = stat(), mine = stat()
        if stat("/proc/\(pid)/exe", &exe) == 0 && stat("/proc/self/exe", &mine) == 0
            && exe.st_dev == mine.st_dev && exe.st_ino == mine.st_ino {
            return .server(uid: uid)
        }
        guard case .success(let comm) = Syscall.readWholeFile("/proc/\(pid)/comm", limit: 64),
              String(decoding: comm, as: UTF8.self) == "tollgate\n",
              case .success(let cmdline) = Syscall.readWholeFile("/proc/\(pid)/cmdline", limit: 1 << 16) else {
            return .other
        }
        let arguments = cmdline.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        guard let program = arguments.first, program == "tollgate" || program.hasSuffix("/tollgate"),
              arguments.dropFirst().contains("serve") else { return .other }
        return .server(uid: uid)
    }

    /// Why the status file in `directory` is not to be believed, or nil: the directory and the file must be owned by
    /// root or by `owner` (the server's user) and writable by nobody else, and the file must not be a link. Anyone
    /// else could plant one naming any process.
    public static func distrust(in directory: String, owner: uid_t) -> String? {
        let path = directory + "/" + fileName
        var info = stat()
        guard stat(directory, &info) == 0 else { return "cannot read \(directory): \(Syscall.describe(errno))" }
        if let problem = looseness(of: info, owner: owner) { return "\(directory) \(problem)" }
        guard lstat(path, &info) == 0 else { return "cannot read \(path): \(Syscall.describe(errno))" }
        guard info.st_mode & S_IFMT == S_IFREG else { return "\(path) is not a plain file (a link?)" }
        if let problem = looseness(of: info, owner: owner) { return "\(path) \(problem)" }
        return nil
    }

    private static func looseness(of info: stat, owner: uid_t) -> String? {
        if info.st_uid != 0 && info.st_uid != owner {
            return "is owned by uid \(info.st_uid), neither root nor the server's user (uid \(owner))"
        }
        if info.st_mode & 0o022 != 0 { return "is writable by its group or by others" }
        return nil
    }

    /// `text` with every control character escaped as `\u{…}` (C0 and C1 controls, DEL, the line and paragraph
    /// separators, the bidirectional overrides and isolates): what another process wrote reaches the admin's
    /// terminal as text, never as escape sequences.
    public static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069:
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Removes the file from `directory` if it is `pid`'s (at exit; a newer server's is left alone).
    public static func remove(from directory: String, pid: Int32) {
        if read(from: directory)?.pid == pid { unlink(directory + "/" + fileName) }
    }
}
