@testable import Tollgate
import Glibc
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
}
