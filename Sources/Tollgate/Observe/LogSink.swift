import Glibc
import Synchronization
import TollgateIO

/// The access log's writer: loops submit finished lines (a memcpy under a lock); one thread writes them to stdout
/// or a file. A file is reopened on `reopen` (SIGUSR1, after logrotate moved it). If the writer falls behind by
/// more than `maxPending` bytes (stdout blocked), new lines are dropped instead of growing memory or blocking a
/// loop: every dropped line is counted (`tollgate_access_log_dropped_lines_total`), and the first drop of a run of
/// drops is reported once on stderr, with the count, when the writer catches up.
///
/// One client cannot fill the queue by itself: its answers stop being produced while it does not read them (the
/// output bound per connection), so its lines arrive no faster than it reads; and while the writer is behind but
/// still writing (`isBehind`), the loops start no new requests until it catches up, so no volume of requests makes
/// it drop. Lines are dropped only when the destination itself stops taking them for `stuckAfterNanos`.
public final class LogSink: @unchecked Sendable {
    private struct State {
        var pending: [UInt8] = []
        var reopen = false
        var stopping = false
        var dropped = 0
        /// Bytes of the batch the writer is writing now.
        var writing = 0
        /// Drops not yet reported on stderr.
        var unreported = 0
    }

    private let path: String?
    private let state = Mutex(State())
    private let wake: WakeChannel
    private let maxPending: Int
    /// Bytes queued for the writer (mirrors `pending` for a lock-free check on the loops).
    private let backlog = Atomic<Int>(0)
    /// When the writer last finished a write (monotonic nanoseconds).
    private let lastProgress = Atomic<UInt64>(Syscall.monotonicNanos())
    /// A write that has not returned for this long means the destination is stuck: loops stop waiting for it.
    private let stuckAfterNanos: UInt64
    private var fd: Int32
    private var thread: pthread_t?

    /// Writes to `path` (appending; created 0640 if missing), or to stdout when nil.
    /// `stuckAfterSeconds`: how long the writer may be blocked in one write before the loops stop waiting for it
    /// and lines are dropped instead.
    public init(path: String?, maxPending: Int = 8 << 20, stuckAfterSeconds: Double = 2) throws(SocketError) {
        self.path = path
        self.maxPending = maxPending
        self.stuckAfterNanos = UInt64(stuckAfterSeconds * 1e9)
        guard let channel = WakeChannel() else { throw SocketError("cannot create the log writer's wake-up channel") }
        wake = channel
        if let path {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            if fd < 0 {
                channel.close()
                throw SocketError("cannot open access log \(path): \(Syscall.describe(errno))")
            }
        } else {
            fd = 1
        }
        thread = spawnThread(name: "tollgate-log") { [self] in run() }
    }

    /// Lines dropped because the writer fell behind.
    public var dropped: Int { state.withLock { $0.dropped } }

    /// The writer is more than a quarter of `maxPending` behind but still making progress: loops should start no new
    /// requests for a moment (one atomic load when it is not behind).
    var isBehind: Bool {
        guard backlog.load(ordering: .relaxed) > maxPending / 4 else { return false }
        return Syscall.monotonicNanos() &- lastProgress.load(ordering: .relaxed) < stuckAfterNanos
    }

    /// Queues whole lines; never blocks on I/O. The lines that do not fit are dropped, each one counted; the ones
    /// before them are kept.
    func submit(_ bytes: [UInt8]) {
        let accepted = state.withLock { s -> Bool in
            let room = maxPending - s.pending.count - s.writing
            var keep = bytes.count
            if keep > room {
                // Whole lines only: cut after the last newline that fits.
                keep = room > 0 ? (bytes[..<room].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) : 0
                let lines = bytes[keep...].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                s.dropped += lines
                s.unreported += lines
            }
            guard keep > 0 else { return false }
            s.pending.append(contentsOf: bytes[..<keep])
            backlog.store(s.pending.count + s.writing, ordering: .relaxed)
            return true
        }
        if accepted { wake.post() }
    }

    /// Reopens the log file (logrotate); a no-op for stdout.
    public func reopen() {
        state.withLock { $0.reopen = true }
        wake.post()
    }

    /// Writes what is queued, then stops the thread and closes the file. Only the first call does anything: a second
    /// one closing the file's descriptor again would close whatever the process opened under that number since.
    public func stop() {
        let first = state.withLock { s -> Bool in
            defer { s.stopping = true }
            return !s.stopping
        }
        guard first else { return }
        wake.post()
        if let thread { pthread_join(thread, nil) }
        thread = nil
        wake.close()
        if path != nil && fd >= 0 { Syscall.close(fd) }
    }

    private func run() {
        while true {
            _ = wake.wait()
            let (bytes, reopen, stopping, unreported) = state.withLock { s -> ([UInt8], Bool, Bool, Int) in
                let b = s.pending
                s.pending.removeAll(keepingCapacity: true)
                s.writing = b.count
                backlog.store(b.count, ordering: .relaxed)
                let r = s.reopen
                s.reopen = false
                let u = s.unreported
                s.unreported = 0
                return (b, r, s.stopping, u)
            }
            if unreported > 0 {
                Diagnostics.warn("access log: \(unreported) line(s) dropped because \(path ?? "stdout") was not keeping up "
                                 + "(see tollgate_access_log_dropped_lines_total)")
            }
            if reopen, let path {
                let newFD = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                if newFD >= 0 {
                    Syscall.close(fd)
                    fd = newFD
                } else {
                    Diagnostics.error("cannot reopen access log \(path): \(Syscall.describe(errno)); still writing the old file")
                }
            }
            // A write starting counts as progress too: only one write outstanding for `stuckAfterNanos` is "stuck"
            // (a writer idle for a while is not).
            lastProgress.store(Syscall.monotonicNanos(), ordering: .relaxed)
            if !bytes.isEmpty { _ = Syscall.writeAll(fd, bytes) }
            lastProgress.store(Syscall.monotonicNanos(), ordering: .relaxed)
            state.withLock { s in
                s.writing = 0
                backlog.store(s.pending.count, ordering: .relaxed)
            }
            if stopping { return }
        }
    }
}
