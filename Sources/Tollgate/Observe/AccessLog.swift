import Glibc
import TollgateIO

/// One line per request, buffered per event loop and handed to the shared `LogSink` once per loop iteration, so
/// a slow disk or a blocked stdout never stalls a loop.
///
/// Loop thread only.
final class AccessLog {
    private let format: AccessLogFormat
    private var buffer: [UInt8] = []
    private var flushScheduled = false
    private let loop: EventLoop
    private let sink: LogSink?

    init(format: AccessLogFormat, loop: EventLoop, sink: LogSink?) {
        self.format = format
        self.loop = loop
        self.sink = sink
    }

    var enabled: Bool { format != .none && sink != nil }

    /// Records one finished request.
    func record(_ record: AccessRecord) {
        guard enabled else { return }
        let stamp = AccessLog.timestamp()
        switch format {
        case .json: record.appendJSON(timestamp: stamp, to: &buffer)
        case .text: record.appendText(timestamp: stamp, to: &buffer)
        case .none: return
        }
        if buffer.count >= AccessLog.handOffBytes {
            // A busy turn hands its lines over as they accumulate, so the writer's backlog (which holds new requests
            // back while it is behind) is seen within the turn, and no single batch outgrows the writer's queue.
            flush()
        } else if !flushScheduled {
            flushScheduled = true
            loop.deferUntilIterationEnd { [self] in
                flushScheduled = false
                flush()
            }
        }
    }

    /// Lines buffered on a loop at most before they are handed to the writer.
    static let handOffBytes = 256 * 1024

    /// Hands what is buffered to the sink.
    func flush() {
        guard !buffer.isEmpty else { return }
        sink?.submit(buffer)
        buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        let nanos = Syscall.wallNanos()
        var seconds = time_t(nanos / 1_000_000_000)
        var tm = tm()
        gmtime_r(&seconds, &tm)
        let ms = (nanos / 1_000_000) % 1000
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(msText)Z"
    }
}
