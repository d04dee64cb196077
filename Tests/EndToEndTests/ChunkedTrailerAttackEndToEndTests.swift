import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

/// Chunked replies with trailer sections against the real proxy, from the edges: streamed generations still counted
/// from their data in the access log and the ledger, a trailer section at the decoder's limit relayed empty over a
/// reused upstream connection, one over the limit or malformed ending the client's stream short of its end (never
/// with a trailer byte, never looking whole) and the upstream connection closed rather than pooled, and HEAD, 204 and
/// 304 answers, which have no body, left alone before and after trailer-bearing replies on the same connection.
@Suite struct ChunkedTrailerAttackEndToEndTests {
    static let alice = Credential.basic("alice", "pw-a")
    static let ndjsonHead = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"

    /// A chunked NDJSON body of `lines`, one chunk each, up to and with its last-chunk line.
    static func framed(_ lines: [String]) -> String {
        lines.map { String($0.utf8.count, radix: 16) + "\r\n" + $0 + "\r\n" }.joined() + "0\r\n"
    }

    /// A trailer section of exactly `size` bytes, final CRLF included.
    static func trailer(bytes size: Int) -> String {
        "X-Pad: " + String(repeating: "p", count: size - 11) + "\r\n\r\n"
    }

    @Test func streamedChatAndGenerateWithTrailerFieldsAreCountedAndReuseTheUpstreamConnection() throws {
        let chat = [#"{"model":"mistral:7b","message":{"role":"assistant","content":"hi"},"done":false}"# + "\n",
                    #"{"model":"mistral:7b","message":{"role":"assistant","content":""},"done":true,"prompt_eval_count":11,"eval_count":4}"# + "\n"]
        let generate = [#"{"model":"mistral:7b","response":"a","done":false}"# + "\n",
                        #"{"model":"mistral:7b","response":"","done":true,"prompt_eval_count":7,"eval_count":3}"# + "\n"]
        let chatBody = Self.framed(chat), generateBody = Self.framed(generate)
        // Fields a counter might read instead of the data, one a trailer of the decoder's full size; each reply is
        // written in two pieces, the second starting inside the trailer section.
        let chatTrailer = "Eval-Count: 99\r\nPrompt-Eval-Count: 99\r\nSet-Cookie: a=b\r\n\r\n"
        let generateTrailer = Self.trailer(bytes: 8192)
        let upstream = try PiecewiseUpstream(replies: [
            ("/api/chat", [bytes(Self.ndjsonHead + chatBody + "Eval"), bytes(String(chatTrailer.dropFirst(4)))]),
            ("/api/generate", [bytes(Self.ndjsonHead + generateBody + "X-Pad"),
                               bytes(String(generateTrailer.dropFirst(5)))]),
        ])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let path = StateDatabase.path(in: url.path + "/state")
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        try withProxyLoggingJSON(upstreamPort: upstream.port, configure: {
            $0.users = users
            $0.databasePath = path
        }) { proxy, log in
            let client = try proxy.plain()
            defer { client.close() }
            try client.send(Req.post("/api/chat", #"{"model":"mistral:7b","messages":[{"role":"user","content":"hi"}]}"#,
                                     Self.alice))
            let head = try client.readHead()
            #expect(head.status == 200 && head.isChunked)
            // The data and the last-chunk line come before the rest of the trailer section is written.
            #expect(try client.take(chatBody.utf8.count) == bytes(chatBody))
            upstream.release()
            #expect(try client.take(2) == bytes("\r\n"))
            try client.send(Req.post("/api/generate", #"{"model":"mistral:7b","prompt":"hi"}"#, Self.alice))
            let generateHead = try client.readHead()
            #expect(generateHead.status == 200)
            #expect(try client.take(generateBody.utf8.count) == bytes(generateBody))
            upstream.release()
            #expect(try client.take(2) == bytes("\r\n"))
            // Then the next answer, whole: nothing of either trailer section was left to read.
            let version = try client.exchange(Req.get("/api/version", Self.alice))
            #expect(version.status == 200 && version.text == "{}")
            try #require(proxy.server.ledger).sync()
            let objects = accessLogObjects(OpsFiles.waitForLines(log, count: 3))
            #expect(objects.map { $0?["path"] as? String } == ["/api/chat", "/api/generate", "/api/version"])
            #expect(objects.map { $0?["prompt_tokens"] as? Int } == [11, 7, nil])
            #expect(objects.map { $0?["completion_tokens"] as? Int } == [4, 3, nil])
            #expect(objects.map { $0?["end"] as? String } == ["done", "done", "done"])
            // bytes_out counts what the client got: the empty trailer section, never the dropped one.
            #expect(objects.prefix(2).map { $0?["bytes_out"] as? Int }
                    == [head.raw.count + chatBody.utf8.count + 2, generateHead.raw.count + generateBody.utf8.count + 2])
            #expect(upstream.connections == 1, "every exchange reused the one upstream connection")
            #expect(upstream.closedByProxy == 0)
        }
        let rows = try UsageStore(reading: path).rows()
        #expect(rows.map(\.route) == ["/api/chat", "/api/generate", "/api/version"])
        #expect(rows.map(\.promptTokens) == [11, 7, nil] && rows.map(\.completionTokens) == [4, 3, nil])
    }

    /// Trailer sections the decoder refuses, by what is wrong with them.
    static let refusedTrailers = [
        "over the limit": ChunkedTrailerAttackEndToEndTests.trailer(bytes: 8193),
        "bare LF": "A: b\nC: d\r\n\r\n",
        "obs-fold": "A: b\r\n folded\r\n\r\n",
        "NUL": "A: b\0c\r\n\r\n",
        "space before the colon": "A : b\r\n\r\n",
        "bare CR then a pipelined response": "A: b\r\n\rHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ]

    /// A trailer section the decoder refuses, written after the client has read the data and the last-chunk line:
    /// the client reads nothing more, not the empty trailer section that would make the body look whole, and the
    /// connection closes; the upstream connection is closed too, with its unread bytes, and the next request opens
    /// a new one.
    @Test(arguments: ["over the limit", "bare LF", "obs-fold", "NUL", "space before the colon",
                      "bare CR then a pipelined response"])
    func aRefusedTrailerSectionTruncatesTheClientAndDiscardsTheUpstreamConnection(what: String) throws {
        let trailer = try #require(Self.refusedTrailers[what])
        let body = Self.framed([#"{"response":"a","done":false}"# + "\n"])
        let upstream = try PiecewiseUpstream(replies: [("/api/version", [bytes(Self.ndjsonHead + body), bytes(trailer)])])
        try withProxyLoggingJSON(upstreamPort: upstream.port) { proxy, log in
            let client = try proxy.plain()
            defer { client.close() }
            try client.send(Req.get("/api/version"))
            #expect(try client.readHead().status == 200)
            #expect(try client.take(body.utf8.count) == bytes(body))
            upstream.release()
            let rest = try client.readToEOF()
            #expect(rest == [], "\(what): \(String(decoding: rest, as: UTF8.self).debugDescription)")
            #expect(upstream.waitForClose(), "the upstream connection was closed (\(what))")
            let object = try #require(accessLogObjects(OpsFiles.waitForLines(log, count: 1)).first ?? nil)
            #expect(object["end"] as? String == "upstream-invalid", "\(what): \(object)")
            // A fresh upstream connection for the next request, answered whole.
            let next = try proxy.plain()
            defer { next.close() }
            let version = try next.exchange(Req.get("/api/version"))
            #expect(version.status == 200 && version.text == "{}")
            #expect(upstream.connections == 2, "\(what)")
        }
    }

    /// Bytes the upstream wrote after a body's trailer section, in the same write (a response nobody asked for):
    /// the client gets its body whole, ending in the empty trailer section, and never those bytes; the upstream
    /// connection, with them unread, is closed rather than pooled, and the next request gets a new one.
    @Test func bytesAfterATrailerSectionAreNeitherRelayedNorLeftOnAPooledConnection() throws {
        let body = "2\r\nok\r\n0;last=1\r\n"
        let extra = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"x\":\"y\"}"
        let upstream = try PiecewiseUpstream(replies: [
            ("/api/version", [bytes(Self.ndjsonHead + body + "Set-Cookie: a=b\r\n\r\n" + extra)]),
        ])
        try withProxyAndFake(configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
        }) { proxy, _ in
            let client = try proxy.plain()
            defer { client.close() }
            let first = try client.exchange(Req.get("/api/version"))
            #expect(first.rawBody == bytes(body + "\r\n"), "\(String(decoding: first.rawBody, as: UTF8.self).debugDescription)")
            #expect(upstream.waitForClose(), "the upstream connection with bytes left over was closed")
            let second = try client.exchange(Req.get("/api/version"))
            #expect(second.status == 200 && second.text == "{}", "\(second.text)")
            #expect(upstream.connections == 2)
        }
    }

    /// The body relays other than the byte-for-byte one, each with a chunked upstream reply carrying trailer fields:
    /// a model list (held whole, then sent with its length), an OpenAI event stream whose usage Tollgate asked for
    /// (decoded, filtered and framed again), and an HTTP/1.0 client (decoded, then the connection closed). None of
    /// the fields reaches the client, and the data does.
    @Test(arguments: ["model list", "event stream with injected usage", "HTTP/1.0 client"])
    func noTrailerFieldReachesAClientOnTheOtherRelays(relay: String) throws {
        let trailer = "Set-Cookie: leaked=1\r\nX-Leak: trailer\r\n\r\n"
        let path: String, request: String, data: String, contentType: String
        switch relay {
        case "model list":
            path = "/api/tags"
            request = Req.get(path)
            data = #"{"models":[{"name":"mistral:7b","model":"mistral:7b"}]}"#
            contentType = "application/json; charset=utf-8"
        case "event stream with injected usage":
            path = "/v1/chat/completions"
            request = Req.post(path, #"{"model":"mistral:7b","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            data = #"data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}"# + "\n\n"
                + "data: [DONE]\n\n"
            contentType = "text/event-stream"
        default:
            path = "/api/version"
            request = "GET /api/version HTTP/1.0\r\nHost: localhost\r\n\r\n"
            data = #"{"version":"0.0.0"}"#
            contentType = "application/json; charset=utf-8"
        }
        let reply = "HTTP/1.1 200 OK\r\nContent-Type: \(contentType)\r\nTransfer-Encoding: chunked\r\n\r\n"
            + String(data.utf8.count, radix: 16) + "\r\n" + data + "\r\n0\r\n" + trailer
        let upstream = try PiecewiseUpstream(replies: [(path, [bytes(reply)])])
        try withProxyAndFake(configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
        }) { proxy, _ in
            let client = try proxy.plain()
            defer { client.close() }
            try client.send(request)
            let response = try client.readResponse()
            let seen = String(decoding: response.head.raw + response.rawBody, as: UTF8.self)
            #expect(response.status == 200, "\(relay): \(seen.debugDescription)")
            #expect(!seen.contains("leaked") && !seen.contains("X-Leak"), "\(relay): \(seen.debugDescription)")
            #expect(response.text.contains("mistral:7b") || response.text.contains("hi") || response.text.contains("0.0.0"),
                    "\(relay): \(seen.debugDescription)")
            if response.head.isChunked {
                #expect(response.rawBody.suffix(5) == bytes("0\r\n\r\n")[...], "\(relay): \(seen.debugDescription)")
            }
        }
    }

    /// HEAD, 204 and 304 have no body, whatever framing their head names; on one upstream connection they come
    /// before and after chunked replies with trailer fields, and every answer is whole.
    @Test func bodilessAnswersAroundTrailerBearingRepliesAreLeftAlone() throws {
        let body = "2\r\nok\r\n0\r\n"
        let trailerReply = bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 + body + "Set-Cookie: a=b\r\nStrict-Transport-Security: max-age=0\r\n\r\n")
        let upstream = try PiecewiseUpstream(replies: [
            ("/api/version", [trailerReply]),
            ("/api/version", [bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")]),
            ("/api/version", [trailerReply]),
            ("/api/version", [bytes("HTTP/1.1 204 No Content\r\n\r\n")]),
            ("/api/version", [trailerReply]),
            ("/api/version", [bytes("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")]),
            ("/api/version", [trailerReply]),
        ])
        try withProxyAndFake(configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
        }) { proxy, _ in
            let client = try proxy.plain()
            defer { client.close() }
            for step in 0..<7 {
                if step % 2 == 0 {
                    let response = try client.exchange(Req.get("/api/version"))
                    #expect(response.status == 200 && response.rawBody == bytes(body + "\r\n"),
                            "\(step): \(String(decoding: response.head.raw + response.rawBody, as: UTF8.self).debugDescription)")
                } else {
                    let head = step == 1
                    try client.send(Req.get("/api/version", method: head ? "HEAD" : "GET"))
                    let response = try client.readResponse(requestWasHead: head)
                    #expect(response.status == [1: 200, 3: 204, 5: 304][step])
                }
            }
            // Nothing was left over after the last answer.
            try client.send(Req.get("/api/version"))
            #expect(try client.readResponse().text == "{}")
            #expect(upstream.connections == 1, "\(upstream.seen)")
            #expect(upstream.closedByProxy == 0)
        }
    }
}

/// An upstream that answers each request, on any of its connections, with the first queued reply for its path
/// (anything else with `{}`). A reply's pieces after the first wait each for `release`, so a test reads what the
/// proxy relayed of one piece before the next is written. Counts connections, and the ones the proxy closed.
private final class PiecewiseUpstream: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let state: Mutex<(replies: [(path: String, pieces: [[UInt8]])], connections: Int, closed: Int,
                              seen: [String])>
    private let gate = DispatchSemaphore(value: 0)
    private let closedSignal = DispatchSemaphore(value: 0)

    init(replies: [(String, [[UInt8]])]) throws {
        state = Mutex((replies.map { (path: $0.0, pieces: $0.1) }, 0, 0, []))
        (listenFD, port) = try RawUpstream.listenOnLoopback()
        RawUpstream.acceptEach(listenFD) { [self] fd in
            let number = state.withLock { s -> Int in
                s.connections += 1
                return s.connections
            }
            return { [self] in serve(fd, number) }
        }
    }

    deinit {
        shutdown(listenFD, Int32(SHUT_RDWR))
        Glibc.close(listenFD)
    }

    var connections: Int { state.withLock { $0.connections } }
    var closedByProxy: Int { state.withLock { $0.closed } }
    /// Every request line read, with its connection's number.
    var seen: [String] { state.withLock { $0.seen } }

    /// Lets the next held piece be written.
    func release() { gate.signal() }

    /// Waits for the proxy to close a connection; false if none closed within the event timeout.
    func waitForClose() -> Bool { closedSignal.wait(timeout: .now() + eventTimeout) == .success }

    private func serve(_ fd: Int32, _ number: Int) {
        defer { Glibc.close(fd) }
        setTestSocketOptions(fd)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        /// Reads more; on the proxy's close, counts it.
        func more() -> Bool {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n == 0 {
                state.withLock { $0.closed += 1 }
                closedSignal.signal()
            }
            if n <= 0 { return false }
            received += buffer[0..<n]
            return true
        }
        while true {
            while received.headEnd == nil { guard more() else { return } }
            let end = received.headEnd!
            let head = String(decoding: received[..<end], as: UTF8.self)
            received.removeFirst(end)
            let lines = head.lowercased().split(separator: "\r\n")
            if let field = lines.first(where: { $0.hasPrefix("content-length:") }),
               let length = Int(field.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
                while received.count < length { guard more() else { return } }
                received.removeFirst(length)
            } else if lines.contains(where: { $0.hasPrefix("transfer-encoding:") }) {
                while !received.ends(with: bytes("\r\n0\r\n\r\n")) { guard more() else { return } }
                received.removeAll()
            }
            let path = head.split(separator: " ").dropFirst().first.map { String($0.split(separator: "?")[0]) } ?? ""
            let pieces = state.withLock { s -> [[UInt8]] in
                s.seen.append("\(number) " + (head.split(separator: "\r\n").first.map(String.init) ?? ""))
                guard let i = s.replies.firstIndex(where: { $0.path == path }) else {
                    return [bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")]
                }
                return s.replies.remove(at: i).pieces
            }
            for (k, piece) in pieces.enumerated() {
                if k > 0 && gate.wait(timeout: .now() + eventTimeout) != .success { return }
                let n = piece.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                if n != piece.count { return }
            }
        }
    }
}
