import Foundation
@testable import Tollgate
import Glibc
import TollgateIO
import Testing

/// The access log's writer: the lines of a batch that do not fit are dropped, every one counted; the whole lines
/// before them are kept.
@Suite struct ObserveLogSinkTests {
    @Test func everyDroppedLineIsCounted() throws {
        let path = "/tmp/tollgate-logsink-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        let sink = try LogSink(path: path, maxPending: 16)
        // Over the bound on its own, whatever the writer has drained: the first line fits, two are dropped, counted.
        sink.submit(Array("first line\nsecond line\nthird line\n".utf8))
        #expect(sink.dropped == 2)
        sink.submit(Array("a\n".utf8))
        sink.stop()
        #expect(sink.dropped == 2)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buffer, 64)
        #expect(Array(buffer[0..<max(0, n)]) == Array("first line\na\n".utf8))
    }

    /// Stopping a second time does nothing: it used to close the file's descriptor again, and with it whatever the
    /// process had opened under that number since (in a test run, another server's socket or log file).
    @Test func stoppingTwiceClosesNoDescriptorItDoesNotOwn() throws {
        let path = "/tmp/tollgate-logsink-twice-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        let sink = try LogSink(path: path)
        sink.submit(Array("a\n".utf8))
        sink.stop()
        // The numbers the sink let go of are the lowest free ones: what opens next takes them.
        let opened = (0..<8).map { _ in open("/dev/null", O_RDONLY) }
        defer { for fd in opened where fd >= 0 { close(fd) } }
        #expect(opened.allSatisfy { $0 >= 0 })
        sink.stop()
        let closed = opened.filter { fcntl($0, F_GETFD) == -1 }
        #expect(closed.isEmpty, "the second stop closed descriptors \(closed)")
        #expect((try? String(contentsOfFile: path, encoding: .utf8)) == "a\n")
    }

    /// A destination that takes lines slowly makes the sink `isBehind` (loops then hold new requests instead of
    /// having lines dropped); once it is read again, the sink catches up and nothing was dropped. A destination
    /// stuck for longer than `stuckAfterSeconds` is not waited for.
    @Test(arguments: [60.0, 0.0])
    func aSlowDestinationHoldsTheLoopsUntilItIsStuck(_ stuckAfter: Double) throws {
        let path = "/tmp/tollgate-logsink-fifo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let reader = open(path, O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        defer { close(reader) }
        let sink = try LogSink(path: path, maxPending: 1 << 20, stuckAfterSeconds: stuckAfter)
        let line = Array(repeating: UInt8(ascii: "x"), count: 1023) + [0x0A]
        // 512 KiB: more than the pipe holds and more than a quarter of maxPending once the writer blocks.
        for _ in 0..<512 { sink.submit(line) }
        if stuckAfter > 0 {
            #expect(eventually { sink.isBehind }, "a writer blocked on its destination is not behind")
        } else {
            #expect(!sink.isBehind, "a stuck destination is waited for")
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var total = 0
        let drained = eventually {
            let n = read(reader, &buffer, buffer.count)
            if n > 0 { total += n }
            return total == 512 * 1024
        }
        #expect(drained, "read \(total)")
        #expect(!sink.isBehind)
        #expect(sink.dropped == 0)
        sink.stop()
    }
}

@Suite struct ObserveAccessLogHandOffTests {
    /// A busy loop turn hands its lines to the writer as they pass `AccessLog.handOffBytes`, not only at the end of
    /// the turn: the writer's backlog is visible within the turn, and no one batch outgrows the writer's queue.
    @Test func aBusyTurnHandsLinesOverAsTheyAccumulate() throws {
        let path = "/tmp/tollgate-handoff-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        let loop = try EventLoop(index: 0)
        let sink = try LogSink(path: path)
        let log = AccessLog(format: .json, loop: loop, sink: sink)
        let longPath = "/" + String(repeating: "a", count: 999)
        for _ in 0..<1000 {
            log.record(AccessRecord(requestID: Array("r".utf8), client: Array("127.0.0.1".utf8), user: nil,
                                    method: "GET", path: longPath, status: 404, bytesIn: 0, bytesOut: 0,
                                    durationNanos: 0, ttfbNanos: nil, upstreamNanos: nil, model: nil, promptTokens: nil,
                                    completionTokens: nil, rateLimit: RateLimitResult(.pass), auth: .notReached, reason: .completed))
        }
        // The loop never ran (no end of iteration): only the hand-offs reached the writer.
        sink.stop()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n").count
        #expect(lines >= 1000 - AccessLog.handOffBytes / 1000, "only \(lines) lines were handed over")
        #expect(lines < 1000, "the end of the turn was not needed for the rest")
        #expect(sink.dropped == 0)
    }
}

/// Polls `condition` every millisecond until it holds; false after `timeoutSeconds` (a guard against hanging, not a
/// bound the test asserts).
private func eventually(timeoutSeconds: Double = 30, _ condition: () -> Bool) -> Bool {
    let deadline = Syscall.monotonicNanos() + UInt64(timeoutSeconds * 1e9)
    while Syscall.monotonicNanos() < deadline {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}
