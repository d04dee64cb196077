import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing
import Tollgate

/// An upstream's chunked replies with trailer fields (HSTS, Set-Cookie, framing fields, odd casings), written in
/// random pieces: the client reads every chunk byte for byte as soon as the piece that completes it was written,
/// then the last-chunk line and an empty trailer section, never a field; the next request on the same client
/// connection, over the same pooled upstream connection, gets its own answer.
@Suite struct ChunkedTrailerEndToEndTests {
    @Test(arguments: [(UInt64(1), false), (UInt64(2), true), (UInt64(3), false), (UInt64(4), true)])
    func generatedRepliesReachTheClientWithoutTheirTrailerFields(seed: UInt64, tls: Bool) throws {
        let upstream = try PacedUpstream()
        defer { upstream.stop() }
        var g = OracleBodyRewriteTests.Generator(state: 0x7472_6169_6C65_7273 &+ seed)
        try withProxyAndFake(configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
            // One worker, one pool: every exchange can reuse the one upstream connection.
            $0.workers = 1
        }) { proxy, _ in
            let clients = 3, perClient = 4
            for _ in 0..<clients {
                let client = tls ? try proxy.tls() : try proxy.plain()
                defer { client.close() }
                for _ in 0..<perClient {
                    try exchange(TrailerReply(using: &g), client, upstream, &g)
                }
            }
            #expect(upstream.counts == (connections: 1, requests: clients * perClient), "each exchange reused the connection")
        }
    }

    /// The counts the access log (and the usage ledger) take from a stream come from its data, never from its
    /// trailer section, and the client still gets the data as it came.
    @Test func aStreamedGenerationWithTrailerFieldsIsCountedFromItsData() throws {
        let lines = [#"{"model":"mistral:7b","response":"a","done":false}"# + "\n",
                     #"{"model":"mistral:7b","response":"","done":true,"prompt_eval_count":7,"eval_count":3}"# + "\n"]
        let body = lines.map { String($0.utf8.count, radix: 16) + "\r\n" + $0 + "\r\n" }.joined() + "0\r\n"
        let raw = try RawUpstream(reply: bytes(TrailerReply.head + body + "Eval-Count: 99\r\nSet-Cookie: a=b\r\n\r\n"))
        try withProxyLoggingJSON(upstreamPort: raw.port) { proxy, log in
            let response = try proxy.fetch(Req.post("/api/generate", #"{"model":"mistral:7b","prompt":"hi"}"#))
            #expect(response.status == 200)
            #expect(response.rawBody == bytes(body + "\r\n"), "\(String(decoding: response.rawBody, as: UTF8.self))")
            let object = try #require(accessLogObjects(OpsFiles.waitForLines(log, count: 1)).first ?? nil)
            #expect(object["completion_tokens"] as? Int == 3)
            #expect(object["prompt_tokens"] as? Int == 7)
        }
    }

    /// One request whose reply the upstream writes in random pieces; after each piece the client reads what the
    /// proxy must have relayed of it by then (a proxy holding bytes back would leave the read waiting, and failing).
    private func exchange(_ reply: TrailerReply, _ client: HTTPClient, _ upstream: PacedUpstream,
                          _ g: inout OracleBodyRewriteTests.Generator) throws {
        try client.send(Req.get("/api/version"))
        upstream.step(.readRequest)
        var cuts = (0..<g.next(10)).map { _ in 1 + g.next(reply.wire.count) }
        // Cuts near the end: inside the last-chunk line, a trailer field, the final CRLF.
        cuts += (0..<g.next(4)).map { _ in reply.wire.count - g.next(reply.trailer.count + 4) }
        cuts = Array(Set(cuts.filter { $0 > 0 && $0 < reply.wire.count } + [reply.wire.count])).sorted()
        var sent = 0, received = 0, headRead = false
        for cut in cuts {
            upstream.step(.write(Array(reply.wire[sent..<cut])))
            sent = cut
            if !headRead && sent >= reply.headLength {
                let head = try client.readHead()
                #expect(head.status == 200 && head.isChunked, "\(String(decoding: head.raw, as: UTF8.self))")
                headRead = true
            }
            guard headRead else { continue }
            let due = reply.relayedLength(afterBodyBytes: sent - reply.headLength)
            guard due > received else { continue }
            let got = try client.take(due - received)
            #expect(got == Array(reply.relayed[received..<due]),
                    "relayed \(String(decoding: got, as: UTF8.self)) of \(String(decoding: reply.wire, as: UTF8.self))")
            received = due
        }
        #expect(headRead && received == reply.relayed.count)
    }
}

/// A chunked reply with random chunks, extensions and trailer fields, and what a client must receive of it.
private struct TrailerReply {
    static let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    static let fields = [
        "Strict-Transport-Security: max-age=0", "sTrIcT-tRaNsPoRt-SeCuRiTy:max-age=0; includeSubDomains",
        "Set-Cookie: session=upstream; Path=/; HttpOnly", "SET-COOKIE:a=b", "Content-Length: 0",
        "Transfer-Encoding: chunked", "Connection: close", "X-Request-Id: upstream", "X-Empty:",
        "Www-Authenticate: Basic realm=\"ollama\"", "Server-Timing: gen;dur=12", "Location: http://10.0.0.7/",
    ]
    static let extensions = [";a", ";n=v", ";q=\"x; \\\" y\"", ";a=1;b;c=\"\""]

    /// The reply as the upstream writes it, head and body.
    var wire: [UInt8]
    let headLength: Int
    /// The body up to its last-chunk line (included), and the trailer section (final CRLF included).
    let framed: [UInt8]
    let trailer: [UInt8]

    init(using g: inout OracleBodyRewriteTests.Generator) {
        var framed: [UInt8] = []
        for _ in 0..<g.next(5) {
            let line = bytes(#"{"model":"m","response":"\#(String(repeating: "x", count: g.next(300)))","done":false}"#
                             + "\n")
            var size = String(line.count, radix: 16, uppercase: g.chance(50))
            if g.chance(20) { size = "0" + size }
            if g.chance(30) { size += g.pick(Self.extensions) }
            framed += bytes(size + "\r\n") + line + bytes("\r\n")
        }
        framed += bytes("0" + (g.chance(30) ? g.pick(Self.extensions) : "") + "\r\n")
        var trailer: [UInt8] = []
        for _ in 0..<g.next(5) { trailer += bytes(g.pick(Self.fields) + "\r\n") }
        trailer += bytes("\r\n")
        self.framed = framed
        self.trailer = trailer
        headLength = Self.head.utf8.count
        wire = bytes(Self.head) + framed + trailer
    }

    /// The body as the client must receive it: the trailer section emptied.
    var relayed: [UInt8] { framed + bytes("\r\n") }

    /// How much of `relayed` must have reached the client once the upstream wrote `n` bytes of the body: all of it
    /// before the trailer section, nothing more until the trailer section ends.
    func relayedLength(afterBodyBytes n: Int) -> Int {
        if n <= framed.count { return n }
        return n < framed.count + trailer.count ? framed.count : relayed.count
    }
}

/// An upstream the test drives step by step: read a request, write these bytes. One connection at a time, with
/// Nagle off so each write leaves at once.
private final class PacedUpstream: @unchecked Sendable {
    enum Step {
        /// Read one request head (the test's requests have no body).
        case readRequest
        /// Write these bytes.
        case write([UInt8])
    }

    let port: UInt16
    private let listenFD: Int32
    private let steps = Mutex<(queue: [Step], stopped: Bool)>(([], false))
    private let ready = DispatchSemaphore(value: 0)
    private let seen = Mutex<(connections: Int, requests: Int)>((0, 0))

    init() throws {
        (listenFD, port) = try RawUpstream.listenOnLoopback()
        let fd = listenFD
        Thread.detachNewThread { [self] in
            while true {
                let connection = accept(fd, nil, nil)
                // Closed here, once `stop` shut it down: never while this thread may still accept on its number.
                guard connection >= 0 else { Glibc.close(fd); return }
                seen.withLock { $0.connections += 1 }
                serve(connection)
            }
        }
    }

    /// Connections accepted and request heads read so far.
    var counts: (connections: Int, requests: Int) { seen.withLock { $0 } }

    /// Queues the next step.
    func step(_ step: Step) {
        steps.withLock { $0.queue.append(step) }
        ready.signal()
    }

    /// Stops accepting and serving.
    func stop() {
        steps.withLock { $0.stopped = true }
        ready.signal()
        shutdown(listenFD, Int32(SHUT_RDWR))
    }

    private func serve(_ fd: Int32) {
        defer { Glibc.close(fd) }
        setTestSocketOptions(fd)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            guard ready.wait(timeout: .now() + eventTimeout) == .success else { return }
            let next = steps.withLock { s -> Step? in s.stopped || s.queue.isEmpty ? nil : s.queue.removeFirst() }
            switch next {
            case nil:
                return
            case .readRequest:
                while received.headEnd == nil {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                    if n <= 0 { return }
                    received += buffer[0..<n]
                }
                received.removeFirst(received.headEnd!)
                seen.withLock { $0.requests += 1 }
            case .write(let piece):
                let n = piece.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                if n != piece.count { return }
            }
        }
    }
}
