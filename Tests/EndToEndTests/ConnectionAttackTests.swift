import Foundation
import Glibc
import Synchronization
import Testing
import Tollgate
import TollgateIO

/// Connection-level attacks on one worker: partial TLS records, records trickled byte by byte, an unread pipelined
/// flood, half-closed and idle connections, and the connection caps. Each holds the attack while another client on
/// the same (only) worker is served, and asserts by events: answers, closes, counters. Where a loop must not spin,
/// the loop's own iteration count (`Server.loopIterations`) must stay small while the attack is held; a spinning
/// loop makes thousands of iterations in the time one request takes.
@Suite(.serialized) struct ConnectionAttackTests {
    static let alice = Credential.basic("alice", "pw-a")

    /// One worker, every timeout long enough not to end an attack during the test, no connection caps (the
    /// attacks open hundreds of connections from 127.0.0.1), a metrics listener.
    static func attackConfig(_ config: inout ServerConfig) {
        config.workers = 1
        config.timeouts.requestHead = 120
        config.timeouts.clientBodyIdle = 120
        config.maxConnectionsPerClient = 0
        config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
    }

    /// Serves `count` GET /api/version on one keep-alive connection and returns how many loop iterations that took.
    static func iterationsToServe(_ proxy: Proxy, count: Int) throws -> UInt64 {
        let client = try proxy.tls()
        defer { client.close() }
        // The first answer proves the loop is alive; the ones after it are what the iterations are counted over.
        try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        let before = proxy.server.loopIterations[0]
        for _ in 0..<count {
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().status == 200)
        }
        return proxy.server.loopIterations[0] - before
    }

    /// Serves one GET /api/version on a fresh connection, then lets it idle until the keep-alive timeout (set to
    /// 1 s by the caller) closes it, and returns the loop iterations of that idle second: a handful of sweeps (one
    /// per 250 ms tick) for a loop with nothing to do, hundreds of thousands for one that spins. The close is the
    /// event waited for; the timer firing proves the loop still runs its timers.
    static func iterationsWhileIdle(_ proxy: Proxy) throws -> UInt64 {
        let client = try proxy.tls()
        defer { client.close() }
        try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        let before = proxy.server.loopIterations[0]
        #expect(try client.isClosedByPeer())
        return proxy.server.loopIterations[0] - before
    }

    /// A request cut at a point: `before` goes out in whole records first, `held` is the record whose tail is
    /// withheld; together they are one request to which the fake answers 200.
    struct CutPoint {
        let name: String
        let before: String
        let held: String
    }

    static let showBody = #"{"model":"mistral:7b"}"#
    static let cutPoints = [
        CutPoint(name: "the whole head", before: "", held: "GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        CutPoint(name: "mid head", before: "GET /api/version HTTP/1.1\r\nHo", held: "st: localhost\r\n\r\n"),
        CutPoint(name: "mid body",
                 before: "POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(showBody.utf8.count)\r\n\r\n{\"model\":",
                 held: "\"mistral:7b\"}"),
    ]

    @Test func partialRecordsOfEveryLengthHoldNoLoop() throws {
        try withProxyAndFake(configure: { config in
            Self.attackConfig(&config)
            config.timeouts.keepAliveIdle = 1
        }) { proxy, fake in
            // Every attack connection holds all but the last k bytes of one record, k from 1 to the whole record
            // but one byte (the record's header alone, or part of it, included), at each cut point.
            var held: [(stream: RecordTLSStream, rest: [UInt8], name: String)] = []
            for point in Self.cutPoints {
                for k in 1... {
                    let stream = try RecordTLSStream(port: proxy.tlsPort)
                    if !point.before.isEmpty { try stream.sendRaw(try stream.seal(bytes(point.before))) }
                    let record = try stream.seal(bytes(point.held))
                    guard k < record.count else { stream.close(); break }
                    try stream.sendRaw(Array(record[..<(record.count - k)]))
                    held.append((stream, Array(record[(record.count - k)...]), "\(point.name), k=\(k)"))
                }
            }
            // And one big record (10 KiB of body) cut far from its end.
            let padding = String(repeating: "x", count: 10_000)
            let bigBody = "{\"model\":\"mistral:7b\",\"pad\":\"\(padding)\"}"
            for k in [65, 100, 1_000, 5_000, 10_000] {
                let stream = try RecordTLSStream(port: proxy.tlsPort)
                try stream.sendRaw(try stream.seal(bytes("POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(bigBody.utf8.count)\r\n\r\n")))
                let record = try stream.seal(bytes(bigBody))
                #expect(record.count > k)
                try stream.sendRaw(Array(record[..<(record.count - k)]))
                held.append((stream, Array(record[(record.count - k)...]), "big body, k=\(k)"))
            }
            #expect(held.count > 130)

            // Another client on the same worker is served, and the loop is not spinning meanwhile.
            let iterations = try Self.iterationsToServe(proxy, count: 50)
            #expect(iterations < 50 * 10 + 100, "\(iterations) loop iterations for 50 requests")
            let idle = try Self.iterationsWhileIdle(proxy)
            #expect(idle < 200, "\(idle) loop iterations in an idle second while \(held.count) partial records are held")

            // Nothing that was held was lost: each record completed, each request answered.
            let before = fake.requests.count
            for (stream, rest, name) in held {
                try stream.sendRaw(rest)
                let response = try HTTPClient(stream).readResponse()
                #expect(response.status == 200, "\(name)")
                stream.close()
            }
            #expect(fake.requests.count - before == held.count)
        }
    }

    @Test func timersFireWhileAPartialRecordIsHeld() throws {
        try withProxyAndFake(configure: { config in
            Self.attackConfig(&config)
            config.timeouts.requestHead = 1
        }) { proxy, _ in
            let stream = try RecordTLSStream(port: proxy.tlsPort)
            defer { stream.close() }
            let record = try stream.seal(bytes("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            try stream.sendRaw(Array(record.dropLast(3)))
            let before = proxy.server.loopIterations[0]
            // The head timeout is the event: it closes the connection, so the loop's timers ran.
            #expect(try stream.readSome(max: 1024).isEmpty)
            let iterations = proxy.server.loopIterations[0] - before
            // A one-second wait takes a handful of sweeps (one per 250 ms tick), not a busy loop's millions.
            #expect(iterations < 200, "\(iterations) loop iterations while the partial record was held")
            #expect(try Self.iterationsToServe(proxy, count: 1) < 200)
        }
    }

    @Test func recordsSplitIntoOneByteSegmentsStillWork() throws {
        try withProxyAndFake(configure: Self.attackConfig) { proxy, fake in
            let stream = try RecordTLSStream(port: proxy.tlsPort)
            defer { stream.close() }
            let client = HTTPClient(stream)
            try stream.sendByteByByte(try stream.seal(bytes("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")))
            #expect(try client.readResponse().status == 200)
            // Head and body in separate records, each trickled.
            try stream.sendByteByByte(try stream.seal(bytes(Self.cutPoints[2].before)))
            try stream.sendByteByByte(try stream.seal(bytes(Self.cutPoints[2].held)))
            #expect(try client.readResponse().status == 200)
            #expect(fake.requests.map(\.target) == ["/api/version", "/api/show"])
            #expect(fake.requests.last?.body == bytes(Self.showBody))
        }
    }

    /// A client pipelines requests Tollgate answers itself (health, 401, 404) and never reads. Tollgate stops
    /// reading it once the answers queued for it reach the output bound (`backpressureBytes`, 64 KiB), so the
    /// memory it holds for this client is at most that bound plus one answer and one 16 KiB read buffer; everything
    /// else stays in the kernel's socket buffers, which fill, and the client's writes stop.
    @Test func anUnreadPipelinedFloodIsNotReadFurther() throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        try withProxyAndFake(configure: { config in
            Self.attackConfig(&config)
            config.users = users
        }) { proxy, _ in
            let requests = [
                "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
                "GET /api/tags HTTP/1.1\r\nHost: localhost\r\n\r\n",
                "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\(Self.alice)\r\n",
            ].map(bytes)
            let block = requests.reduce([], +)
            let flood = try RawSocket(port: try #require(proxy.plainPort), buffer: 16384)
            defer { flood.close() }
            var written = 0
            var stalled = false
            // Failure guard: a Tollgate that keeps reading takes all of this (hundreds of thousands of requests).
            while written < 32 << 20 {
                let n = try flood.writeWithoutBlocking(block, from: written % block.count)
                written += n
                if n == 0 && !flood.waitWritable(millis: 1000) {
                    stalled = true
                    break
                }
            }
            #expect(stalled, "Tollgate kept reading \(written) bytes of requests whose answers were never read")

            // Another client on the same worker is served while the flood is held.
            let other = try proxy.tls()
            defer { other.close() }
            try other.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try other.readResponse().status == 200)

            let scrape = try MetricsScrape(proxy)
            #expect(scrape["tollgate_client_output_holds_total"] >= 1)
            let peak = scrape["tollgate_client_output_queued_peak_bytes"]
            #expect(peak > 0 && peak <= Double(64 * 1024 + 4096), "peak queued output \(peak)")

            // Once the client reads, the requests that waited are answered, in order, every complete one.
            var complete = 0, offset = 0
            while true {
                let r = requests[complete % requests.count]
                if offset + r.count > written { break }
                offset += r.count
                complete += 1
            }
            var statuses: [Int] = []
            let reader = HTTPClient(flood)
            while statuses.count < complete { statuses.append(try reader.readResponse().status) }
            let expected = (0..<complete).map { [200, 401, 404][$0 % 3] }
            #expect(statuses == expected)
        }
    }

    @Test func halfClosedConnectionsAreAnsweredOrClosed() throws {
        try withProxyAndFake(configure: { config in
            Self.attackConfig(&config)
            config.timeouts.keepAliveIdle = 1
        }) { proxy, _ in
            let port = try #require(proxy.plainPort)
            // A complete request, then FIN: answered, then closed.
            var answered: [RawSocket] = []
            for _ in 0..<20 {
                let s = try RawSocket(port: port)
                try s.write(bytes("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"))
                s.shutdownWrite()
                answered.append(s)
            }
            // Part of a head, then FIN (plain and TLS, a partial record): closed.
            var cut: [any ByteStream] = []
            for _ in 0..<20 {
                let s = try RawSocket(port: port)
                try s.write(bytes("GET /healthz HTTP/1.1\r\nHo"))
                s.shutdownWrite()
                cut.append(s)
                let t = try RecordTLSStream(port: proxy.tlsPort)
                let record = try t.seal(bytes("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"))
                try t.sendRaw(Array(record.dropLast(5)))
                _ = Glibc.shutdown(t.socket, Int32(SHUT_WR))
                cut.append(t)
            }
            for s in answered {
                let client = HTTPClient(s)
                #expect(try client.readResponse().status == 200)
                #expect(try client.isClosedByPeer())
                s.close()
            }
            for s in cut {
                #expect(try s.readSome(max: 1024).isEmpty)
                s.close()
            }
            let iterations = try Self.iterationsToServe(proxy, count: 20)
            #expect(iterations < 20 * 10 + 100, "\(iterations) loop iterations for 20 requests")
            let idle = try Self.iterationsWhileIdle(proxy)
            #expect(idle < 200, "\(idle) loop iterations in an idle second after the half-closed connections")
        }
    }

    @Test func thousandsOfIdleConnectionsDoNotStopAnother() throws {
        try withProxyAndFake(configure: Self.attackConfig) { proxy, _ in
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            // Each connection costs this process two descriptors (both ends); keep a reserve for everything else.
            let count = min(2000, (Int(limit.rlim_cur) - 512) / 2)
            #expect(count >= 200, "the descriptor limit (\(limit.rlim_cur)) leaves room for too few connections")
            let port = try #require(proxy.plainPort)
            var idle: [RawSocket] = []
            defer { for s in idle { s.close() } }
            for i in 0..<count {
                let s = try RawSocket(port: port)
                // Half say nothing at all; half are idle keep-alive connections after one request.
                if i % 2 == 1 {
                    try s.write(bytes("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"))
                    #expect(try HTTPClient(s).readResponse().status == 200)
                }
                idle.append(s)
            }
            #expect(try waitUntil { try MetricsScrape(proxy)["tollgate_open_connections"] >= Double(count) })
            let iterations = try Self.iterationsToServe(proxy, count: 20)
            #expect(iterations < 20 * 10 + 100, "\(iterations) loop iterations for 20 requests")
        }
    }

    /// `count` plain connections, each of which was served one health check (so each is counted by the caps).
    static func servedConnections(_ count: Int, port: UInt16) throws -> [HTTPClient] {
        var open: [HTTPClient] = []
        for _ in 0..<count {
            let c = HTTPClient(try RawSocket(port: port))
            try c.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try c.readResponse().status == 200)
            open.append(c)
        }
        return open
    }

    @Test func maxConnectionsClosesTheOneOverTheCap() throws {
        try withProxyAndFake(configure: { config in
            Self.attackConfig(&config)
            config.maxConnections = 5
        }) { proxy, _ in
            let port = try #require(proxy.plainPort)
            var open = try Self.servedConnections(5, port: port)
            defer { for c in open { c.close() } }
            let over = try RawSocket(port: port)
            defer { over.close() }
            #expect(try over.readSome(max: 1024).isEmpty, "the connection over max-connections was not closed")
            #expect(try MetricsScrape(proxy)["tollgate_connections_refused_total{limit=\"max-connections\"}"] == 1)
            // A closed connection makes room again.
            open.removeFirst().close()
            #expect(try waitUntil {
                guard let c = try? HTTPClient(RawSocket(port: port)) else { return false }
                defer { c.close() }
                guard (try? c.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")) != nil else { return false }
                return (try? c.readResponse().status) == 200
            })
        }
    }

    @Test func maxConnectionsPerClientCapsOneAddressOnly() throws {
        try withProxyAndFake(configure: { config in
            Self.attackConfig(&config)
            config.maxConnectionsPerClient = 3
        }) { proxy, _ in
            let port = try #require(proxy.plainPort)
            let open = try Self.servedConnections(3, port: port)
            defer { for c in open { c.close() } }
            let over = try RawSocket(port: port)
            defer { over.close() }
            #expect(try over.readSome(max: 1024).isEmpty, "the fourth connection from 127.0.0.1 was not closed")
            #expect(try MetricsScrape(proxy)["tollgate_connections_refused_total{limit=\"max-connections-per-client\"}"] == 1)
            // Another address is not affected.
            let other = HTTPClient(try RawSocket(port: port, source: "127.0.0.2"))
            defer { other.close() }
            try other.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try other.readResponse().status == 200)
        }
    }

    /// One client's long pipeline is served a few requests per turn: another client that sends one request after
    /// it is answered long before the pipeline is through, even while the pipeline's client reads everything.
    @Test func aLongPipelineTakesTurnsWithOtherClients() throws {
        try withProxyAndFake(configure: Self.attackConfig) { proxy, _ in
            let port = try #require(proxy.plainPort)
            let pipeline = try RawSocket(port: port)
            let other = try RawSocket(port: port)
            let count = 5000
            let request = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            // The pipeline's answers are read as they come, so nothing but turn-taking holds it back.
            let received = AnswerCount()
            let box = SocketBox(pipeline)
            let reader = Thread {
                let pipeline = box.socket
                var seen = 0
                var carry: [UInt8] = []
                while seen < count, let chunk = try? pipeline.readSome(max: 65536), !chunk.isEmpty {
                    carry += chunk
                    var lines = 0
                    var k = 0
                    while let r = carry[k...].firstIndex(of: 0x48), r + 8 <= carry.count {
                        if Array(carry[r..<r + 8]) == Array("HTTP/1.1".utf8) { lines += 1 }
                        k = r + 1
                    }
                    seen += lines
                    carry = Array(carry[k...])
                    received.value.withLock { $0 = seen }
                }
            }
            reader.start()
            try pipeline.write(Array(repeating: request, count: count).flatMap { $0 })
            try other.write(request)
            let answer = try other.readSome(max: 4096)
            #expect(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
            let atThatMoment = received.value.withLock { $0 }
            #expect(atThatMoment < count, "the other client waited for the whole pipeline")
            #expect(waitUntil { received.value.withLock { $0 } == count }, "the pipeline was not finished")
        }
    }
}

/// Answers counted by a reader thread.
private final class AnswerCount: Sendable {
    let value = Mutex(0)
}

/// A socket handed to one reader thread (the test thread only writes to it).
private final class SocketBox: @unchecked Sendable {
    let socket: RawSocket
    init(_ socket: RawSocket) { self.socket = socket }
}
