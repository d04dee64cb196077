import Glibc
import TollgateIO

/// One line per request, buffered per event loop and written once per loop iteration.
///
/// Loop thread only. The line never holds credentials or bodies: time, request id, client, method, path, status,
/// bytes, duration and how the exchange ended.
final class AccessLog {
    private let format: AccessLogFormat
    private var buffer: [UInt8] = []
    private var flushScheduled = false
    private let loop: EventLoop

    init(format: AccessLogFormat, loop: EventLoop) {
        self.format = format
        self.loop = loop
    }

    var enabled: Bool { format != .none }

    /// Records one finished request.
    func record(requestID: [UInt8], client: [UInt8], user: String?, method: String, path: String, status: Int, bytesIn: Int,
                bytesOut: Int, durationNanos: UInt64, ttfbNanos: UInt64?, reason: CloseReason) {
        guard format == .text else { return }
        appendTimestamp()
        buffer.append(0x20)
        buffer.append(contentsOf: requestID)
        buffer.append(0x20)
        buffer.append(contentsOf: client)
        buffer.append(0x20)
        buffer.append(contentsOf: (user ?? "-").utf8)
        let ttfb = ttfbNanos.map { Self.millis($0) } ?? "-"
        let line = " \"\(method) \(path)\" \(status) in=\(bytesIn) out=\(bytesOut) \(Self.millis(durationNanos))ms ttfb=\(ttfb)ms \(reason.rawValue)\n"
        buffer.append(contentsOf: line.utf8)
        scheduleFlush()
    }

    private static func millis(_ nanos: UInt64) -> String {
        let tenths = nanos / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }

    private func appendTimestamp() {
        let nanos = Syscall.wallNanos()
        var seconds = time_t(nanos / 1_000_000_000)
        var tm = tm()
        gmtime_r(&seconds, &tm)
        let ms = (nanos / 1_000_000) % 1000
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        let s = "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(msText)Z"
        buffer.append(contentsOf: s.utf8)
    }

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.deferUntilIterationEnd { [self] in flush() }
    }

    /// Writes what is buffered to stdout.
    func flush() {
        flushScheduled = false
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { Glibc.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
        }
        buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
    }
}
