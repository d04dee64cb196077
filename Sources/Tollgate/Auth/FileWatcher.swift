import Glibc
import Synchronization
import TollgateIO

/// The users file's watcher: each new version (whose unusable lines disable only their users) or the error when the
/// file cannot be read (the caller keeps the users it has and logs the error).
public typealias UsersFileWatcher = FileWatcher<UsersFile>

extension FileWatcher where Value == UsersFile {
    /// Starts watching the users file at `path` (see `FileWatcher`).
    public convenience init(
        path: String, debounceMillis: Int = 100,
        onChange: @escaping @Sendable (Result<UsersFile, UsersFileError>) -> Void
    ) throws(UsersFileError) {
        try self.init(path: path, debounceMillis: debounceMillis, parse: { UsersFile.parse(bytes: $0, path: $1) },
                      onChange: onChange)
    }
}

/// Watches a file Tollgate reloads live (the users file, `authorized-keys`) and calls back with each new version,
/// parsed by `parse` (which never fails: unusable lines are the parsed value's warnings), or with the error when
/// the file cannot be read (the caller keeps what it has and logs the error).
///
/// Watches the file's directory with inotify, so in-place rewrites (`htpasswd`), rename-replace (editors, the
/// CLI) and delete-then-recreate are all seen; a burst of events becomes one reload after `debounceMillis` of
/// quiet. A `stat` check every poll interval backs inotify up (symlink swaps, file systems without inotify).
/// Runs its own thread, which blocks in `poll` and calls `onChange` there; unchanged contents are not reported
/// except through `reloadNow` (SIGHUP). Call `stop` before releasing it, never from `onChange`.
public final class FileWatcher<Value: Sendable>: @unchecked Sendable {
    /// The watched file.
    public let path: String
    private let name: [UInt8]
    private let onChange: @Sendable (Result<Value, UsersFileError>) -> Void
    private let parse: @Sendable (_ bytes: [UInt8], _ path: String) -> Value
    private let debounceNanos: UInt64
    private let pollMillis: Int32
    private let inotifyFD: Int32
    private let wake: WakeChannel
    private let stopping = Atomic<Bool>(false)
    private let reloadRequested = Atomic<Bool>(false)
    private let stopped = Mutex<Bool>(false)
    private var thread: pthread_t?
    // Confined to the watcher thread after init.
    private var lastSignature: FileSignature?
    private var lastBytes: [UInt8]?

    private static var triggers: UInt32 { UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB) }

    /// Starts watching `path`. Throws when its directory cannot be watched at all. `parse` and `onChange` run on
    /// the watcher's thread.
    public init(
        path: String, debounceMillis: Int = 100,
        parse: @escaping @Sendable (_ bytes: [UInt8], _ path: String) -> Value,
        onChange: @escaping @Sendable (Result<Value, UsersFileError>) -> Void
    ) throws(UsersFileError) {
        self.path = path
        self.parse = parse
        self.onChange = onChange
        debounceNanos = UInt64(max(0, debounceMillis)) * 1_000_000
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let directory = slash.map { $0 == path.utf8.startIndex ? "/" : String(path[..<$0]) } ?? "."
        name = Array(slash.map { path.utf8[path.utf8.index(after: $0)...] } ?? path.utf8[...])
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw UsersFileError(path: path, "cannot watch directory \(directory): \(Syscall.describe(errno))")
        }
        guard let channel = WakeChannel() else {
            throw UsersFileError(path: path, "cannot create the watcher's wake-up socket pair")
        }
        wake = channel
        var fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        let mask = Self.triggers | UInt32(IN_MODIFY)
        if fd >= 0, inotify_add_watch(fd, directory, mask) < 0 {
            // No inotify here (limits, exotic file system): the stat poll alone still reloads within a second.
            Syscall.close(fd)
            fd = -1
        }
        inotifyFD = fd
        pollMillis = fd >= 0 ? 1000 : 250
        lastSignature = FileSignature(path: path)
        lastBytes = try? UsersFile.readFile(path)
        thread = spawnThread(name: "tollgate-file-watch") { [self] in run() }
    }

    /// Reloads now and reports the result even if nothing changed (for SIGHUP). Returns at once.
    public func reloadNow() {
        reloadRequested.store(true, ordering: .releasing)
        wake.post()
    }

    /// Stops the thread and closes the descriptors. Idempotent.
    public func stop() {
        let first = stopped.withLock { wasStopped in
            defer { wasStopped = true }
            return !wasStopped
        }
        guard first else { return }
        stopping.store(true, ordering: .releasing)
        wake.post()
        if let thread { pthread_join(thread, nil) }
        thread = nil
        if inotifyFD >= 0 { Syscall.close(inotifyFD) }
        wake.close()
    }

    private func run() {
        var fds = [pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        var quietUntil: UInt64?
        var capAt: UInt64 = 0
        while !stopping.load(ordering: .acquiring) {
            let now = Syscall.monotonicNanos()
            var timeout = pollMillis
            if let quietUntil {
                let due = min(quietUntil, capAt)
                timeout = due > now ? Int32(min((due - now + 999_999) / 1_000_000, 60_000)) : 0
            }
            fds[0].revents = 0
            fds[1].revents = 0
            let ready = poll(&fds, fds[1].fd >= 0 ? 2 : 1, timeout)
            if stopping.load(ordering: .acquiring) { return }
            if ready > 0, fds[0].revents != 0 {
                wake.drain()
                if reloadRequested.exchange(false, ordering: .acquiring) {
                    quietUntil = nil
                    reload(force: true)
                }
            }
            if ready > 0, fds.count > 1, fds[1].revents != 0 {
                let seen = readEvents(&buffer)
                let t = Syscall.monotonicNanos()
                if seen.trigger || (seen.activity && quietUntil != nil) {
                    if quietUntil == nil { capAt = t + 5 * max(debounceNanos, 1_000_000) }
                    quietUntil = t + debounceNanos
                }
            }
            if let due = quietUntil, Syscall.monotonicNanos() >= min(due, capAt) {
                quietUntil = nil
                reload(force: false)
            } else if ready == 0, quietUntil == nil, FileSignature(path: path) != lastSignature {
                // The safety net saw a change inotify did not report: reload after the quiet period.
                let t = Syscall.monotonicNanos()
                capAt = t + 5 * max(debounceNanos, 1_000_000)
                quietUntil = t + debounceNanos
            }
        }
    }

    /// Drains the inotify queue; `trigger` when an event for our file means "new version or gone", `activity` for
    /// writes still in progress.
    private func readEvents(_ buffer: inout [UInt8]) -> (trigger: Bool, activity: Bool) {
        var trigger = false
        var activity = false
        while case .bytes(let n) = Syscall.read(inotifyFD, into: &buffer, at: 0, count: buffer.count) {
            var offset = 0
            // struct inotify_event: wd, mask, cookie, len (4 bytes each, native order), then a NUL-padded name.
            while offset + 16 <= n {
                let mask = Self.word(buffer, offset + 4)
                let length = Int(Self.word(buffer, offset + 12))
                let nameBytes = buffer[(offset + 16)..<min(n, offset + 16 + length)].prefix { $0 != 0 }
                if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    trigger = true
                } else if nameBytes.elementsEqual(name) {
                    if mask & Self.triggers != 0 { trigger = true }
                    if mask & UInt32(IN_MODIFY) != 0 { activity = true }
                }
                offset += 16 + length
            }
        }
        return (trigger, activity)
    }

    private static func word(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    /// Loads the file and reports it, unless it is byte-for-byte what was last reported and `force` is false.
    private func reload(force: Bool) {
        lastSignature = FileSignature(path: path)
        let bytes: [UInt8]
        do throws(UsersFileError) {
            bytes = try UsersFile.readFile(path)
        } catch {
            lastBytes = nil
            onChange(.failure(error))
            return
        }
        if !force, bytes == lastBytes { return }
        lastBytes = bytes
        onChange(.success(parse(bytes, path)))
    }
}
