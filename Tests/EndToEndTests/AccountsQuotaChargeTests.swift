import Foundation
import FakeOllama
import Glibc
import Synchronization
import Testing
import Tollgate
import TollgateIO

/// What an exchange that ends without Ollama's count is charged: nothing only when no byte of it reached an
/// upstream; its reservation (the body's bytes + the template allowance, plus its generation cap) otherwise.
@Suite struct AccountsQuotaChargeTests {
    static let alice = AccountsQuotaTests.alice

    /// `/api/embeddings` runs the model over the whole prompt but reports no count: charged its reservation.
    @Test func legacyEmbeddingsAreChargedTheirReservation() throws {
        try AccountsQuotaTests.withQuotas(["alice tokens-per-day=2000"]) { proxy, _, book in
            let prompt = String(repeating: "tell me everything about the sky ", count: 45)  // ~1.5 kB
            let body = #"{"model":"mistral:7b","prompt":"\#(prompt)"}"#
            let first = try proxy.fetch(Req.post("/api/embeddings", body, Self.alice))
            #expect(first.status == 200, "\(first.text)")
            #expect(book.balance(of: "alice").dayTokens == body.utf8.count + QuotaEstimate.templateOverhead)
            #expect(book.balance(of: "alice").dayRequests == 1)
            #expect(book.balance(of: "alice").held == 0)
            // What is left no longer holds another one.
            let second = try proxy.fetch(Req.post("/api/embeddings", body, Self.alice))
            expectError(second, status: 429, family: .ollama)
        }
    }

    /// Ollama answers some errors only after the work (an `/api/embed` input over the context with
    /// `truncate: false`: the other inputs are embedded first): an error status from Ollama is charged the
    /// reservation and counts as a request.
    @Test func anErrorStatusFromOllamaIsChargedTheReservation() throws {
        let upstream = try ScriptedUpstream { _ in
            ScriptedUpstream.json(400, #"{"error":"the input length exceeds the context length"}"#)
        }
        try AccountsQuotaTests.withQuotas(["alice tokens-per-day=100000 requests-per-day=2"], configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
        }) { proxy, _, book in
            let inputs = (0..<20).map { _ in "\"" + String(repeating: "lorem ipsum ", count: 6) + "\"" }
            let body = #"{"model":"mistral:7b","truncate":false,"input":[\#(inputs.joined(separator: ","))]}"#
            for _ in 0..<2 {
                let response = try proxy.fetch(Req.post("/api/embed", body, Self.alice))
                #expect(response.status == 400)
            }
            let third = try proxy.fetch(Req.post("/api/embed", body, Self.alice))
            expectError(third, status: 429, family: .ollama)
            #expect(upstream.requests == 2)
            #expect(book.balance(of: "alice").dayTokens == 2 * (body.utf8.count + QuotaEstimate.templateOverhead))
            #expect(book.balance(of: "alice").dayRequests == 2)
            #expect(book.balance(of: "alice").held == 0)
        }
    }

    /// Tollgate's own `504` after the request was sent (Ollama still generating when `upstream-timeout` passed)
    /// is charged the reservation: Ollama worked until then.
    @Test func tollgatesOwn504AfterForwardingIsChargedTheReservation() throws {
        let upstream = try ScriptedUpstream { _ in nil }  // never answers
        try AccountsQuotaTests.withQuotas(["alice tokens-per-day=2000 max-predict=100"], configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
            $0.timeouts.upstreamIdle = 0.2
        }) { proxy, _, book in
            let body = #"{"model":"mistral:7b","prompt":"Why is the sky blue?","stream":false}"#
            let response = try proxy.fetch(Req.post("/api/generate", body, Self.alice))
            #expect(response.status == 504)
            #expect(upstream.requests == 1)
            #expect(book.balance(of: "alice").dayTokens > body.utf8.count + QuotaEstimate.templateOverhead)
            #expect(book.balance(of: "alice").dayRequests == 1)
            #expect(book.balance(of: "alice").held == 0)
        }
    }

    /// A backend that was sent the request and closed before answering may have worked on it; the request goes
    /// to the other backend, and the exchange is charged that one's count plus the whole reservation for each
    /// backend it left (failing over must not make the first one's work free).
    @Test func aBackendLeftAfterItWasSentTheRequestIsChargedTheReservation() throws {
        let posts = Mutex(0)
        let dropping = try ScriptedUpstream { request in
            let text = String(decoding: request, as: UTF8.self)
            if text.hasPrefix("GET /api/version") { return ScriptedUpstream.json(200, #"{"version":"0.12.0"}"#) }
            if text.hasPrefix("GET /api/tags") || text.hasPrefix("GET /api/ps") {
                return ScriptedUpstream.json(200, #"{"models":[{"name":"mistral:7b","model":"mistral:7b"}]}"#)
            }
            posts.withLock { $0 += 1 }
            return []  // reads the whole request, then closes without a byte of answer
        }
        try AccountsQuotaTests.withQuotas(["alice tokens-per-day=100000 max-predict=100"], configure: { config in
            config.upstreams.append(BackendSpec(address: UpstreamAddress(parsing: "http://127.0.0.1:\(dropping.port)")!))
            config.concurrency = nil
        }) { proxy, _, book in
            try #require(checkNow(proxy.server), "the first health checks never finished")
            let body = #"{"model":"mistral:7b","prompt":"Why is the sky blue?","stream":false}"#
            var counted = 0
            for _ in 0..<4 {
                let response = try proxy.fetch(Req.post("/api/generate", body, Self.alice))
                #expect(response.status == 200, "\(response.text)")
                let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
                counted += (object["prompt_eval_count"] as? Int ?? 0) + (object["eval_count"] as? Int ?? 0)
            }
            let left = posts.withLock { $0 }
            #expect(left >= 1, "no request went to the backend that drops them first")
            let reservation = body.utf8.count + QuotaEstimate.templateOverhead + 100
            #expect(book.balance(of: "alice").dayTokens == counted + left * reservation)
            #expect(book.balance(of: "alice").dayRequests == 4)
            #expect(book.balance(of: "alice").held == 0)
        }
    }

    /// A vision model makes thousands of tokens of a few bytes of image: each image in the body adds
    /// `QuotaEstimate.tokensPerImage` to the reservation, so a quota that a small body would fit refuses one with
    /// images it cannot cover.
    @Test func imagesAreReservedAtWhatAVisionModelMakesOfThem() throws {
        try AccountsQuotaTests.withQuotas(["alice tokens-per-day=6000 max-predict=10"]) { proxy, fake, book in
            let one = #"{"model":"mistral:7b","prompt":"what is this?","images":["iVBORw0KGgo="],"stream":false}"#
            let response = try proxy.fetch(Req.post("/api/generate", one, Self.alice))
            #expect(response.status == 200, "\(response.text)")
            let two = #"{"model":"mistral:7b","prompt":"what is this?","images":["iVBORw0KGgo=","iVBORw0KGgo="],"stream":false}"#
            expectError(try proxy.fetch(Req.post("/api/generate", two, Self.alice)), status: 429, family: .ollama)
            #expect(fake.requests.count == 1)
            #expect(book.balance(of: "alice").held == 0)
        }
    }

    /// Ollama's `404` (a model it does not have) comes before it loads or runs anything: charged nothing, and it does
    /// not count as a request.
    @Test func ollamasNotFoundIsFree() throws {
        let upstream = try ScriptedUpstream { _ in
            ScriptedUpstream.json(404, #"{"error":"model 'nosuch' not found"}"#)
        }
        try AccountsQuotaTests.withQuotas(["alice tokens-per-day=2000 requests-per-day=1"], configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
        }) { proxy, _, book in
            for _ in 0..<3 {
                let response = try proxy.fetch(Req.post("/api/generate", #"{"model":"nosuch","prompt":"hi"}"#, Self.alice))
                #expect(response.status == 404)
            }
            #expect(upstream.requests == 3)
            #expect(book.balance(of: "alice").dayTokens == 0)
            #expect(book.balance(of: "alice").dayRequests == 0)
            #expect(book.balance(of: "alice").held == 0)
        }
    }

    /// A request that never reached an upstream (nothing listens there: Tollgate answers `502`) costs nothing.
    @Test func aRequestNeverForwardedIsFree() throws {
        let (fd, port) = try RawUpstream.listenOnLoopback()
        Glibc.close(fd)  // the port is closed now: the connection is refused
        try AccountsQuotaTests.withQuotas(["alice tokens-per-day=2000"], configure: {
            $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(port)")!
        }) { proxy, _, book in
            let response = try proxy.fetch(Req.post("/api/generate", #"{"model":"mistral:7b","prompt":"hi"}"#, Self.alice))
            #expect(response.status == 502)
            #expect(book.balance(of: "alice").dayTokens == 0)
            #expect(book.balance(of: "alice").dayRequests == 0)
            #expect(book.balance(of: "alice").held == 0)
        }
    }
}

/// A hand-written upstream: for each connection reads one request (Content-Length body), then calls `reply` with
/// the request bytes and writes what it returns (nil: writes nothing and holds the connection until the peer goes).
final class ScriptedUpstream: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let count = Mutex(0)
    private let reply: @Sendable ([UInt8]) -> [UInt8]?

    var requests: Int { count.withLock { $0 } }

    init(reply: @escaping @Sendable ([UInt8]) -> [UInt8]?) throws {
        (listenFD, port) = try RawUpstream.listenOnLoopback()
        self.reply = reply
        RawUpstream.acceptEach(listenFD) { [self] fd in { [self] in serve(fd) } }
    }

    static func json(_ status: Int, _ body: String) -> [UInt8] {
        bytes("HTTP/1.1 \(status) X\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    private func serve(_ fd: Int32) {
        defer { Glibc.close(fd) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = received.headEnd {
                let head = String(decoding: received[..<end], as: UTF8.self).lowercased()
                var length = 0
                if let r = head.range(of: "content-length: ") {
                    length = Int(head[r.upperBound...].prefix { $0.isNumber }) ?? 0
                }
                if received.count - end >= length { break }
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { return }
            received += buffer[0..<n]
        }
        count.withLock { $0 += 1 }
        guard let answer = reply(received) else {
            // Hold the connection until the proxy closes it.
            while (buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }) > 0 {}
            return
        }
        _ = answer.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}
