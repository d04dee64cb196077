import Dispatch
import Glibc
import Synchronization
import Testing
import Tollgate

/// A pooled upstream connection the upstream closes as the next request arrives (a keep-alive timeout racing the
/// request): the request goes once more on a new connection, and the client never sees the stale one.
@Suite struct UpstreamStaleConnectionTests {
    @Test func aRequestOnAStalePooledConnectionIsSentAgainOnANewOne() throws {
        let upstream = try StaleUpstream()
        try withProxyAndFake(configure: { $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")! }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let first = try client.readResponse()
            #expect(first.status == 200)
            #expect(first.text == "one")
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let second = try client.readResponse()
            #expect(second.status == 200)
            #expect(second.text == "two")
            // Three requests reached the upstream: the first, the one its pooled connection dropped, the resend.
            #expect(upstream.requests == 3)
            #expect(upstream.connections == 2)
        }
    }

    /// A pull, push, create, copy or delete that reached Ollama may have run: it is never sent again (nginx's
    /// `non_idempotent` rule), and the client is told it failed rather than having it run twice.
    @Test func aModelChangeOnAStalePooledConnectionIsNotSentAgain() throws {
        let upstream = try StaleUpstream()
        try withProxyAndFake(configure: { $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")! }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            let body = #"{"model":"llama3:70b","stream":false}"#
            try client.send("POST /api/pull HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let r = try client.readResponse()
            #expect(r.status == 502)
            #expect(upstream.paths == ["/api/version", "/api/pull"], "the pull reached the upstream exactly once")
            #expect(upstream.connections == 1)
        }
    }

    /// An interim response means the upstream has the request: even a request that may be repeated is not sent
    /// again once one came.
    @Test func aRequestAnInterimResponseAcknowledgedIsNotSentAgain() throws {
        let upstream = try StaleUpstream(interimBeforeClose: true)
        try withProxyAndFake(configure: { $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")! }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            try client.send("GET /api/tags HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().status == 502)
            #expect(upstream.paths == ["/api/version", "/api/tags"])
        }
    }
}

/// An upstream whose first connection answers one request and closes on the second without answering (after a
/// `102 Processing` with `interimBeforeClose`); every later connection answers each request.
private final class StaleUpstream: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let interimBeforeClose: Bool
    private let counts = Mutex<(connections: Int, requests: Int, paths: [String])>((0, 0, []))

    var requests: Int { counts.withLock { $0.requests } }
    var connections: Int { counts.withLock { $0.connections } }
    /// The request paths received, in order.
    var paths: [String] { counts.withLock { $0.paths } }

    init(interimBeforeClose: Bool = false) throws {
        self.interimBeforeClose = interimBeforeClose
        (listenFD, port) = try RawUpstream.listenOnLoopback()
        RawUpstream.acceptEach(listenFD) { [self] fd in
            let index = counts.withLock { c -> Int in
                c.connections += 1
                return c.connections
            }
            return { [self] in serve(fd, stale: index == 1) }
        }
    }

    deinit {
        shutdown(listenFD, Int32(SHUT_RDWR))
        Glibc.close(listenFD)
    }

    private func serve(_ fd: Int32, stale: Bool) {
        defer { Glibc.close(fd) }
        var tv = timeval(tv_sec: ClientSocket.ioTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        var served = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { return }
            received += buffer[0..<n]
            while let end = received.headEnd {
                let head = String(decoding: received[0..<end], as: UTF8.self)
                received.removeFirst(end)
                // A body, if any, is small and arrives with its head in these tests: drop it.
                if let length = head.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
                   let n = Int(String(length.split(separator: ":")[1].filter { $0 != " " })) {
                    while received.count < n {
                        let m = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                        if m <= 0 { return }
                        received += buffer[0..<m]
                    }
                    received.removeFirst(n)
                }
                let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                counts.withLock { $0.requests += 1; $0.paths.append(path) }
                served += 1
                if stale && served == 2 {
                    if interimBeforeClose {
                        let interim = bytes("HTTP/1.1 102 Processing\r\n\r\n")
                        _ = interim.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                    return
                }
                let text = stale ? "one" : "two"
                let reply = bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(text.utf8.count)\r\n\r\n\(text)")
                _ = reply.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            }
        }
    }
}
