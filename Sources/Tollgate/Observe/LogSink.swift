import Glibc
import Synchronization
import TollgateIO

/// The access log's writer: loops submit finished lines (a memcpy under a lock); one thread writes them to stdout
/// or a file. A file is reopened on `reopen` (SIGUSR1, after logrotate moved it). If the writer falls behind by
/// more than `maxPending` bytes (stdout blocked), new lines are dropped and counted instead of growing memory or
/// blocking a loop.
public final class LogSink: @unchecked Sendable {
    private struct State {
        var pending: [UInt8] = []
        var reopen = false
        var stopping = false
        var dropped = 0
    }

    private let path: String?
    private let state = Mutex(State())
    private let wake: WakeChannel
    private let maxPending: Int
    private var fd: Int32
    private var thread: pthread_t?

    /// Writes to `path` (appending; created 0640 if missing), or to stdout when nil.
    public init(path: String?, maxPending: Int = 8 << 20) throws(SocketError) {
        self.path = path
        self.maxPending = maxPending
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

    /// Queues bytes; never blocks on I/O.
    func submit(_ bytes: [UInt8]) {
        let accepted = state.withLock { s -> Bool in
            if s.pending.count + bytes.count > maxPending {
                s.dropped += 1
                return false
            }
            s.pending.append(contentsOf: bytes)
            return true
        }
        if accepted { wake.post() }
    }

    /// Reopens the log file (logrotate); a no-op for stdout.
    public func reopen() {
        state.withLock { $0.reopen = true }
        wake.post()
    }

    /// Writes what is queued, then stops the thread.
    public func stop() {
        state.withLock { $0.stopping = true }
        wake.post()
        if let thread { pthread_join(thread, nil) }
        thread = nil
        wake.close()
        if path != nil && fd >= 0 { Syscall.close(fd) }
    }

    private func run() {
        while true {
            _ = wake.wait()
            let (bytes, reopen, stopping) = state.withLock { s -> ([UInt8], Bool, Bool) in
                let b = s.pending
                s.pending.removeAll(keepingCapacity: true)
                let r = s.reopen
                s.reopen = false
                return (b, r, s.stopping)
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
            if !bytes.isEmpty { _ = Syscall.writeAll(fd, bytes) }
            if stopping { return }
        }
    }
}
