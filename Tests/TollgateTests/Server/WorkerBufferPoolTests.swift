import Testing
import TollgateIO
@testable import Tollgate

/// The worker's write-buffer pool: what `takeOutput` hands out always has its room, whatever was handed back.
@Suite struct WorkerBufferPoolTests {
    private func worker() throws -> Worker {
        var config = ServerConfig()
        config.metricsListen = []
        return Worker(loop: try EventLoop(index: 0), config: config, tls: nil, authenticator: nil, rateLimiter: nil,
                      concurrency: nil, userRateLimiter: nil, logSink: nil)
    }

    @Test func anEmptyBufferHandedBackIsNotPooled() throws {
        let w = try worker()
        // A buffer swapped away leaves its holder an empty array; handing that back must not poison the pool.
        var empty: [UInt8] = []
        w.recycleOutput(&empty)
        var small: [UInt8] = [1, 2, 3]
        w.recycleOutput(&small)
        #expect(small.isEmpty)
        for _ in 0..<4 {
            let b = w.takeOutput()
            #expect(b.isEmpty && b.capacity >= Worker.bufferSize)
        }
    }

    @Test func aBufferWithRoomComesBackEmptyWithItsRoom() throws {
        let w = try worker()
        var b = w.takeOutput()
        b.append(contentsOf: [UInt8](repeating: 7, count: 100))
        w.recycleOutput(&b)
        #expect(b.isEmpty && b.capacity == 0)
        let again = w.takeOutput()
        #expect(again.isEmpty && again.capacity >= Worker.bufferSize)
    }

    /// A buffer still held elsewhere when it is handed back (a request's copy kept for a resend, let go while its
    /// connection still writes it): the next taker's bytes never show in the holder's, nor the other way round.
    @Test func aBufferHandedBackWhileStillHeldIsNotSharedWithTheNextTaker() throws {
        let w = try worker()
        var connectionOut = w.takeOutput()
        connectionOut.append(contentsOf: Array("POST /a HTTP/1.1\r\nX-User: alice\r\n\r\nalice's body".utf8))
        let sent = connectionOut
        var kept = connectionOut
        w.recycleOutput(&kept)
        var next = w.takeOutput()
        #expect(next.isEmpty && next.capacity >= Worker.bufferSize)
        next.append(contentsOf: Array("POST /b HTTP/1.1\r\nX-User: bob\r\n\r\n".utf8))
        connectionOut.append(contentsOf: Array("more of alice".utf8))
        #expect(Array(connectionOut.prefix(sent.count)) == sent)
        #expect(next == Array("POST /b HTTP/1.1\r\nX-User: bob\r\n\r\n".utf8))
    }
}
