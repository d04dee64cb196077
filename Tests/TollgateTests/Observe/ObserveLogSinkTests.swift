@testable import Tollgate
import Glibc
import TollgateIO
import Testing

/// The access log's writer: a batch that does not fit is dropped whole, and every line in it is counted.
@Suite struct ObserveLogSinkTests {
    @Test func everyDroppedLineIsCounted() throws {
        let path = "/tmp/tollgate-logsink-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        let sink = try LogSink(path: path, maxPending: 16)
        // Over the bound on its own, whatever the writer has drained: three lines dropped, all counted.
        sink.submit(Array("first line\nsecond line\nthird line\n".utf8))
        #expect(sink.dropped == 3)
        sink.submit(Array("a\n".utf8))
        sink.stop()
        #expect(sink.dropped == 3)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buffer, 64)
        #expect(Array(buffer[0..<max(0, n)]) == Array("a\n".utf8))
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
