import Foundation
import Glibc
import Synchronization
import Testing
import Tollgate

/// Many users at once, requests of random sizes, through an upstream that answers some requests early, some after
/// an interim `100 Continue`, and closes some pooled connections as a request arrives (a stale connection): every
/// request the upstream saw is byte for byte one a client sent (credentials dropped), a resent one is the same
/// bytes as the first try, nothing is sent twice that may not be, and every client gets its own answer. Upstream
/// write buffers are pooled per worker and lent to the copy kept for a resend; this is what they must never break.
@Suite struct UpstreamBufferMixTests {
    @Test(arguments: [1, 2]) func everyRequestReachesTheUpstreamAsItsClientSentIt(workers: Int) throws {
        let upstream = try MixUpstream()
        try withProxyAndFake(configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
            $0.workers = workers
            $0.concurrency = nil
        }) { proxy, _ in
            try runMix(proxy, [upstream], seed: UInt64(1000 * workers))
        }
    }

    /// Two backends: reads are kept for another backend and fail over when one closes before answering.
    @Test(arguments: [1, 2]) func everyRequestReachesOneOfTwoBackendsAsItsClientSentIt(workers: Int) throws {
        let upstreams = [try MixUpstream(), try MixUpstream()]
        try withProxyAndFake(configure: { config in
            config.upstreams = upstreams.map {
                BackendSpec(address: UpstreamAddress(parsing: "http://127.0.0.1:\($0.port)")!, maxInFlight: nil)
            }
            config.upstream = config.upstreams[0].address
            config.workers = workers
            config.concurrency = nil
            config.healthInterval = 3_600
            // The failures here are the test's, one request at a time: no backend is ejected for them.
            config.healthFails = 1_000_000
        }) { proxy, _ in
            try runMix(proxy, upstreams, seed: UInt64(5000 * workers))
        }
    }

    /// A client that leaves while its request waits for the upstream's answer: the upstream connection that carries
    /// the unanswered request is closed, never pooled again for the next request (whose answer would be the
    /// abandoned request's).
    @Test func aConnectionWhoseClientLeftBeforeTheAnswerCarriesNoOtherRequest() throws {
        let upstream = try MixUpstream()
        try withProxyAndFake(configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
            $0.concurrency = nil
        }) { proxy, _ in
            let alice = try proxy.plain()
            let first = MixRequest(user: 0, seq: 0, act: "n", method: "POST", body: MixRequest.body(user: 0, seq: 0, size: 10))
            #expect(try alice.exchange(String(decoding: first.text, as: UTF8.self)).status == 200)
            #expect(upstream.recorded.wait(timeout: .now() + eventTimeout) == .success)
            // Alice's second request goes out on the pooled connection; she leaves before any answer.
            let abandoned = MixRequest(user: 0, seq: 1, act: "d", method: "POST", body: MixRequest.body(user: 0, seq: 1, size: 10))
            try alice.send(abandoned.text)
            #expect(upstream.recorded.wait(timeout: .now() + eventTimeout) == .success, "the upstream never got the request")
            alice.close()
            // Bob's requests, one after another.
            let bob = try proxy.plain()
            defer { bob.close() }
            var sent = [first.key: first, abandoned.key: abandoned]
            var statuses = [first.key: 200]
            for seq in 0..<5 {
                let r = MixRequest(user: 1, seq: seq, act: "n", method: "POST", body: MixRequest.body(user: 1, seq: seq, size: 10))
                sent[r.key] = r
                let response = try bob.exchange(String(decoding: r.text, as: UTF8.self))
                statuses[r.key] = response.status
                #expect(response.status == 200 && response.head.header("X-Resp") == r.key, "\(r.path): \(response.status) \(response.text)")
            }
            MixUpstream.check([upstream], against: sent, statuses: statuses, scenarios: false)
        }
    }

    private func runMix(_ proxy: Proxy, _ upstreams: [MixUpstream], seed: UInt64) throws {
        let users = 6, perUser = 40
        let run = MixRun(proxy, readPosts: upstreams.count > 1)
        let group = DispatchGroup()
        for u in 0..<users {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    var client = MixClient(user: u, seed: seed + UInt64(u), run: run)
                    try client.run(perUser)
                } catch {
                    run.failures.withLock { $0.append("user \(u): \(error)") }
                }
            }.start()
        }
        #expect(group.wait(timeout: .now() + 120) == .success, "the clients did not finish")
        for f in run.failures.withLock({ $0 }) { Issue.record("\(f)") }
        let requests = run.sent.withLock { $0 }
        #expect(requests.count == users * perUser)
        MixUpstream.check(upstreams, against: requests, statuses: run.statuses.withLock { $0 })
    }
}

/// One request a client sent: its parts, and what the upstream must have seen of it.
struct MixRequest: Sendable {
    let user: Int
    let seq: Int
    /// n: answered after the body; e: answered before reading the body; c: `100 Continue`, then answered;
    /// s / x: a reused upstream connection closes as it arrives (a GET, then a POST); f: the first connection it
    /// arrives on closes, reused or new (a GET); h: a HEAD.
    let act: Character
    let method: String
    let body: [UInt8]
    /// A POST to a read route (kept for another backend, read whole, may be sent twice) rather than a blob upload.
    var toReadRoute = false
    var key: String { "\(user)/\(seq)" }
    /// Routes the proxy forwards (a blob upload may not be sent twice, a version read may), naming the request.
    var path: String {
        let name = "mix-\(user)-\(seq)-\(act)-\(body.count)"
        return method == "GET" || toReadRoute ? "/api/version?\(name)" : "/api/blobs/\(name)"
    }

    /// The user, sequence number and act a target names, or nil.
    static func parse(target: String) -> (key: String, act: String)? {
        guard let start = target.range(of: "mix-") else { return nil }
        let parts = target[start.upperBound...].split(separator: "-").map(String.init)
        guard parts.count == 4 else { return nil }
        return ("\(parts[0])/\(parts[1])", parts[2])
    }

    var text: [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nX-User: \(user)\r\nX-Seq: \(seq)\r\n"
            + Credential.basic("user\(user)", "secret\(user)")
        if method == "POST" { head += "Content-Type: application/octet-stream\r\nContent-Length: \(body.count)\r\n" }
        return Array((head + "\r\n").utf8) + body
    }

    /// A body that names its request in every byte run, so bytes of another request show.
    static func body(user: Int, seq: Int, size: Int) -> [UInt8] {
        let unit = Array("<u\(user)s\(seq)>".utf8)
        var b: [UInt8] = []
        b.reserveCapacity(size)
        while b.count < size { b.append(unit[b.count % unit.count]) }
        return b
    }
}

/// What the client threads share: the proxy, what they sent, how they failed.
private final class MixRun: @unchecked Sendable {
    let proxy: Proxy
    let failures = Mutex<[String]>([])
    let sent = Mutex<[String: MixRequest]>([:])
    /// The status each request was answered with.
    let statuses = Mutex<[String: Int]>([:])

    /// Whether some POSTs go to a read route (two backends: such bodies are read whole and kept for a resend).
    let readPosts: Bool

    init(_ proxy: Proxy, readPosts: Bool) {
        self.proxy = proxy
        self.readPosts = readPosts
    }
}

/// A deterministic mix of requests for one user on one keep-alive connection (reopened when the proxy closes it).
private struct MixClient {
    let user: Int
    var rng: UInt64
    let run: MixRun

    init(user: Int, seed: UInt64, run: MixRun) {
        self.user = user
        self.rng = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        self.run = run
    }

    mutating func next(_ bound: Int) -> Int {
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        return Int(rng % UInt64(bound))
    }

    mutating func makeRequest(_ seq: Int) -> MixRequest {
        let acts: [Character] = ["n", "n", "n", "e", "c", "s", "s", "x", "h", "f", "d"]
        let act = acts[next(acts.count)]
        let size: Int
        switch act {
        case "n", "c": size = [0, 1, 100, 4_000, 16_384, 16_385, 70_000, 300_000][next(8)]
        case "e", "x", "d": size = [0, 10, 2_000, 8_000][next(4)]
        default: size = 0
        }
        let method = act == "s" || act == "f" ? "GET" : act == "h" ? "HEAD" : "POST"
        var r = MixRequest(user: user, seq: seq, act: act, method: method, body: MixRequest.body(user: user, seq: seq, size: size))
        if run.readPosts && method == "POST" && next(2) == 0 {
            r.toReadRoute = true
            // Read whole and written from one buffer: large enough to be written in parts, answered early.
            if act == "e" || act == "n" { r = MixRequest(user: user, seq: seq, act: act, method: method,
                                                         body: MixRequest.body(user: user, seq: seq, size: [100, 70_000, 1_000_000][next(3)]),
                                                         toReadRoute: true) }
        }
        return r
    }

    mutating func run(_ count: Int) throws {
        var client = try run.proxy.plain()
        defer { client.close() }
        var seq = 0
        while seq < count {
            // Sometimes two small requests pipelined in one write.
            var batch = [makeRequest(seq)]
            seq += 1
            let pipelined: Set<Character> = ["n", "c", "s", "h"]
            if seq < count, next(3) == 0, pipelined.contains(batch[0].act), batch[0].body.count <= 4_000 {
                let second = makeRequest(seq)
                if pipelined.contains(second.act) && second.body.count <= 4_000 {
                    batch.append(second)
                    seq += 1
                }
            }
            run.sent.withLock { for r in batch { $0[r.key] = r } }
            try client.send(batch.flatMap(\.text))
            if batch[0].act == "d" {
                // Gone before the answer: the proxy drops the exchange and its upstream connection.
                client.close()
                client = try run.proxy.plain()
                continue
            }
            var reopen = false
            for r in batch {
                let response = try client.readResponse(requestWasHead: r.method == "HEAD")
                if response.head.header("Connection")?.lowercased() == "close" { reopen = true }
                run.statuses.withLock { $0[r.key] = response.status }
                if (r.act == "x" || r.act == "f") && response.status == 502 { continue }
                guard response.status == 200, response.head.header("X-Resp") == r.key else {
                    throw WireError("\(r.path): got \(response.status) X-Resp \(response.head.header("X-Resp") ?? "-") \(response.text.prefix(200))")
                }
                if r.method != "HEAD" && response.body != Array("resp \(r.key)".utf8) {
                    throw WireError("\(r.path): body \(response.text.prefix(100))")
                }
            }
            if reopen {
                client.close()
                client = try run.proxy.plain()
            }
        }
    }
}

/// An upstream that serves each connection on its own thread, acts as each request's path says, and records every
/// request it got (head and body, exactly as received) and every one it dropped by closing.
private final class MixUpstream: @unchecked Sendable {
    struct Seen {
        let connection: Int
        let head: [UInt8]
        let body: [UInt8]
        let dropped: Bool
        /// Answered early, then the connection closed before the whole body came (the proxy had its answer).
        var truncated = false
    }

    let port: UInt16
    private let listenFD: Int32
    /// Requests answered early whose body is still being read (recorded when it has come, or the connection closed).
    private let early = NSCondition()
    /// Signalled each time a whole request was recorded.
    let recorded = DispatchSemaphore(value: 0)
    private var earlyOpen = 0
    /// `lingered`: requests whose client went away and whose upstream connection the proxy kept open (or wrote more on).
    fileprivate let state = Mutex<(connections: Int, seen: [Seen], droppedKeys: Set<String>, lingered: [String])>((0, [], [], []))

    init() throws {
        (listenFD, port) = try RawUpstream.listenOnLoopback()
        RawUpstream.acceptEach(listenFD) { [self] fd in
            let index = state.withLock { s -> Int in
                s.connections += 1
                return s.connections
            }
            return { [self] in serve(fd, connection: index) }
        }
    }

    deinit {
        shutdown(listenFD, Int32(SHUT_RDWR))
        Glibc.close(listenFD)
    }

    private func serve(_ fd: Int32, connection: Int) {
        defer { Glibc.close(fd) }
        var tv = timeval(tv_sec: ClientSocket.ioTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var served = 0
        func more() -> Bool {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { return false }
            received += buffer[0..<n]
            return true
        }
        func write(_ text: String) {
            let b = Array(text.utf8)
            _ = b.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        while true {
            var end = received.headEnd
            while end == nil {
                guard more() else { return }
                end = received.headEnd
            }
            let head = Array(received[0..<end!])
            received.removeFirst(end!)
            let text = String(decoding: head, as: UTF8.self)
            let line = text.split(separator: "\r\n").first.map(String.init) ?? ""
            let parts = line.split(separator: " ")
            let method = parts.first.map(String.init) ?? ""
            let named = parts.count > 1 ? MixRequest.parse(target: String(parts[1])) : nil
            let length = text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            guard let named else {
                // A health check or anything else: a plain answer, not recorded.
                while received.count < length { guard more() else { return } }
                received.removeFirst(length)
                write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"models\":[]}")
                continue
            }
            let (key, act) = named
            let reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Resp: \(key)\r\nContent-Length: \(("resp " + key).utf8.count)\r\n\r\n"
                + (method == "HEAD" ? "" : "resp \(key)")
            if ((act == "s" || act == "x") && served > 0) || act == "f" {
                let first = state.withLock { s -> Bool in
                    guard !s.droppedKeys.contains(key) else { return false }
                    s.droppedKeys.insert(key)
                    s.seen.append(Seen(connection: connection, head: head, body: [], dropped: true))
                    return true
                }
                if first { return }
            }
            if act == "e" || act == "d" {
                early.lock()
                earlyOpen += 1
                early.unlock()
                if act == "e" { write(reply) }
            }
            // Whatever way this request ends, an early one is settled: recorded, or its connection gone.
            defer {
                if act == "e" || act == "d" {
                    early.lock()
                    earlyOpen -= 1
                    early.broadcast()
                    early.unlock()
                }
            }
            if act == "c" { write("HTTP/1.1 100 Continue\r\n\r\n") }
            while received.count < length {
                guard more() else {
                    if act == "e" || act == "d" {
                        let partial = Seen(connection: connection, head: head, body: received, dropped: false, truncated: true)
                        state.withLock { $0.seen.append(partial) }
                    }
                    return
                }
            }
            let body = Array(received[0..<length])
            received.removeFirst(length)
            state.withLock { $0.seen.append(Seen(connection: connection, head: head, body: body, dropped: false)) }
            recorded.signal()
            if act == "d" {
                // No answer: the proxy closes this connection when its client goes.
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                if n != 0 {
                    let what = n > 0 ? "\(key) then got: \(String(decoding: buffer[0..<min(n, 120)], as: UTF8.self))" : "\(key) errno \(errno)"
                    state.withLock { $0.lingered.append(what) }
                }
                return
            }
            if act != "e" { write(reply) }
            served += 1
        }
    }

    /// Checks every request the upstreams saw against the requests the clients sent and the statuses they got.
    static func check(_ upstreams: [MixUpstream], against sent: [String: MixRequest], statuses: [String: Int],
                      scenarios: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) {
        var seen: [Seen] = [], dropped: Set<String> = []
        for u in upstreams {
            // The clients have all their answers; an early one's body may still be on its way.
            u.early.lock()
            let deadline = Date(timeIntervalSinceNow: eventTimeout)
            while u.earlyOpen > 0 && u.early.wait(until: deadline) {}
            #expect(u.earlyOpen == 0, "an early-answered request never finished", sourceLocation: sourceLocation)
            u.early.unlock()
            let (s, d, lingered) = u.state.withLock { ($0.seen, $0.droppedKeys, $0.lingered) }
            #expect(lingered.isEmpty, "upstream connections left open after their client went: \(lingered)", sourceLocation: sourceLocation)
            seen += s
            dropped.formUnion(d)
        }
        var answered: [String: Int] = [:]
        var firstTry: [String: [String]] = [:]
        for s in seen {
            let text = String(decoding: s.head, as: UTF8.self)
            let lines = text.split(separator: "\r\n").map(String.init)
            let path = lines.first?.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            guard let named = MixRequest.parse(target: path), let r = sent[named.key] else {
                Issue.record("the upstream got a request no client sent: \(text.prefix(300))", sourceLocation: sourceLocation)
                continue
            }
            let context = "\(r.path) on upstream connection \(s.connection)"
            #expect(lines.first == "\(r.method) \(r.path) HTTP/1.1", "\(context): \(text.prefix(300))", sourceLocation: sourceLocation)
            func values(_ name: String) -> [String] {
                lines.dropFirst().compactMap { l in
                    guard let colon = l.firstIndex(of: ":"), l[..<colon].lowercased() == name else { return nil }
                    return l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            #expect(values("x-user") == ["\(r.user)"], "\(context)", sourceLocation: sourceLocation)
            #expect(values("x-seq") == ["\(r.seq)"], "\(context)", sourceLocation: sourceLocation)
            #expect(values("authorization").isEmpty && !text.contains("secret"), "\(context): credentials reached the upstream",
                    sourceLocation: sourceLocation)
            #expect(values("host").count == 1, "\(context)", sourceLocation: sourceLocation)
            if r.method == "POST" {
                #expect(values("content-length") == ["\(r.body.count)"], "\(context)", sourceLocation: sourceLocation)
            }
            // The Host line names the backend (another one after a failover); the rest is the same bytes.
            let withoutHost = lines.filter { !$0.lowercased().hasPrefix("host:") }
            if s.dropped {
                firstTry[r.key] = withoutHost
                continue
            }
            #expect(s.truncated ? r.body.starts(with: s.body) : s.body == r.body, "\(context): the body differs (\(s.body.count) bytes: \(String(decoding: s.body.prefix(60), as: UTF8.self)))",
                    sourceLocation: sourceLocation)
            if let first = firstTry[r.key] {
                #expect(first == withoutHost, "\(context): the resend's head differs from the first try's", sourceLocation: sourceLocation)
            }
            answered[r.key, default: 0] += 1
        }
        // The mix did what it is for: stale pooled connections, resent reads, dropped uploads.
        if scenarios {
        #expect(sent.values.contains { $0.act == "s" && dropped.contains($0.key) }, sourceLocation: sourceLocation)
        #expect(sent.values.contains { $0.act == "x" && dropped.contains($0.key) }, sourceLocation: sourceLocation)
        #expect(sent.values.contains { $0.act == "f" && dropped.contains($0.key) && statuses[$0.key] == 200 },
                sourceLocation: sourceLocation)
        for u in upstreams {
            #expect(u.state.withLock { !$0.seen.isEmpty }, "a backend got no request", sourceLocation: sourceLocation)
        }
        }
        for r in sent.values {
            // A POST the upstream dropped may have run: never sent again, so it was answered nowhere; a read is
            // sent again (502 only with no other backend for a new connection's failure).
            if r.act == "d" {
                // Its client left: it reached the upstream once or, when the proxy saw the client go first, not at all.
                #expect(answered[r.key, default: 0] <= 1, "\(r.path) reached the upstream more than once", sourceLocation: sourceLocation)
                continue
            }
            let status = statuses[r.key]
            #expect(status == 200 || (status == 502 && (r.act == "x" || r.act == "f") && dropped.contains(r.key)),
                    "\(r.path) got \(status.map(String.init) ?? "nothing")", sourceLocation: sourceLocation)
            let expected = status == 200 ? 1 : 0
            #expect(answered[r.key, default: 0] == expected, "\(r.path) was answered upstream \(answered[r.key, default: 0]) times",
                    sourceLocation: sourceLocation)
        }
    }
}
