import Glibc
import Synchronization
import TollgateIO

/// Status, warnings and errors on stderr, one line each, so stdout stays the access log.
///
/// On a terminal they read as text ("tollgate: warning: ..."); when stderr is not a terminal (journald, a log
/// shipper) and the access log is JSON, they are JSON lines of the same form: time, level, message.
///
/// An event loop never writes to stderr itself (a blocked terminal or pipe would stop every connection on it): on a
/// loop thread a line is queued, bounded, for a writer thread; past the bound lines are counted and the count is
/// reported in the next line written. Other threads (start-up, the command line tools) write at once.
public enum Diagnostics {
    private static let json = Atomic<Bool>(false)

    private struct Queue {
        var bytes: [UInt8] = []
        var dropped = 0
        var writerStarted = false
        var writing = false
    }

    private static let queue = Mutex(Queue())
    /// Bytes waiting for the writer at most (a few thousand lines).
    static let maxQueued = 256 * 1024
    private static let wake = WakeChannel()

    /// Chooses JSON lines when stderr is not a terminal and `structured` is asked for.
    public static func configure(structured: Bool) {
        json.store(structured && isatty(2) == 0, ordering: .relaxed)
    }

    public static func info(_ message: String) { emit("info", message) }
    public static func warn(_ message: String) { emit("warning", message) }
    public static func error(_ message: String) { emit("error", message) }

    /// Creates the writer's wake channel and starts its thread now, before the loops run (the server's start), so
    /// that its descriptors and thread exist from the start instead of appearing at the first line a loop writes.
    public static func prepareWriter() {
        guard let wake else { return }
        let start = queue.withLock { q -> Bool in
            let start = !q.writerStarted
            q.writerStarted = true
            return start
        }
        if start { _ = spawnThread(name: "tollgate-diag") { runWriter(wake) } }
    }

    /// Lines dropped so far because the writer fell behind (stderr blocked).
    public static var dropped: Int { queue.withLock { $0.dropped } }

    /// Waits until queued lines were written (before the process exits). Not on a loop thread.
    public static func flush() {
        while queue.withLock({ !$0.bytes.isEmpty || $0.writing }) { usleep(1000) }
    }

    private static func format(_ level: String, _ message: String) -> String {
        if json.load(ordering: .relaxed) {
            return "{\"time\":\"\(AccessLog.timestamp())\",\"level\":\"\(level)\",\"message\":\(ErrorResponse.jsonString(message))}\n"
        }
        return "tollgate: \(level == "info" ? "" : level + ": ")\(message)\n"
    }

    private static func emit(_ level: String, _ message: String) {
        let line = Array(format(level, message).utf8)
        guard EventLoop.onLoopThread, let wake else {
            _ = Syscall.writeAll(2, line)
            return
        }
        let (accepted, startWriter) = queue.withLock { q -> (Bool, Bool) in
            guard q.bytes.count + line.count <= maxQueued else {
                q.dropped += 1
                return (false, false)
            }
            q.bytes.append(contentsOf: line)
            let start = !q.writerStarted
            q.writerStarted = true
            return (true, start)
        }
        if startWriter { _ = spawnThread(name: "tollgate-diag") { runWriter(wake) } }
        if accepted { wake.post() }
    }

    /// The writer thread: takes what the loops queued and writes it with blocking writes. Lives as long as the
    /// process (it holds nothing but the queue).
    private static func runWriter(_ wake: WakeChannel) {
        var reported = 0
        while true {
            _ = wake.wait()
            let (bytes, dropped) = queue.withLock { q -> ([UInt8], Int) in
                let b = q.bytes
                q.bytes.removeAll(keepingCapacity: true)
                q.writing = !b.isEmpty
                return (b, q.dropped)
            }
            if dropped > reported {
                _ = Syscall.writeAll(2, Array(format("warning", "\(dropped - reported) diagnostic line(s) dropped: stderr was not keeping up").utf8))
                reported = dropped
            }
            if !bytes.isEmpty { _ = Syscall.writeAll(2, bytes) }
            queue.withLock { $0.writing = false }
        }
    }
}
