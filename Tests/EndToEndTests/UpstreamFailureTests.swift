import FakeOllama
import Foundation
import Glibc
import Testing
import Tollgate

/// What the client sees when either side goes away or the upstream fails: cancellation upstream, truncated
/// streams, and 502/504 in the caller's API shape.
@Suite struct UpstreamFailureTests {
    @Test func clientDisconnectMidStreamClosesTheUpstream() throws {
        try withProxyAndFake(tokens: 20) { proxy, fake in
            fake.stepMode = true
            let client = try proxy.tls()
            try client.send(StreamingTests.post("/api/generate", #"{"model":"mistral:7b","prompt":"hi"}"#))
            fake.allowLines(2)
            #expect(try client.readHead().status == 200)
            #expect(try client.readLine()?.contains(#""done":false"#) == true)
            #expect(try client.readLine()?.contains(#""done":false"#) == true)
            client.close()
            #expect(fake.waitForCancellations(1, timeoutSeconds: eventTimeout))
            #expect(fake.waitForOpenConnections(0, timeoutSeconds: eventTimeout))
        }
    }

    @Test func clientDisconnectBeforeTheResponseClosesTheUpstream() throws {
        try withProxyAndFake { proxy, fake in
            fake.fault = .hang
            let client = try proxy.tls()
            try client.send(StreamingTests.post("/api/generate", #"{"model":"mistral:7b","prompt":"hi"}"#))
            #expect(fake.waitForRequests(1, timeoutSeconds: eventTimeout))
            client.close()
            #expect(fake.waitForOpenConnections(0, timeoutSeconds: eventTimeout))
        }
    }

    @Test func upstreamDeathTruncatesTheStream() throws {
        try withProxyAndFake(tokens: 10) { proxy, fake in
            fake.fault = .dieAfterLines(3)
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(StreamingTests.post("/api/generate", #"{"model":"mistral:7b","prompt":"hi"}"#))
            let head = try client.readHead()
            #expect(head.status == 200)
            #expect(head.isChunked)
            for _ in 0..<3 {
                let chunk = try client.readChunk()
                #expect(chunk.data.map { String(decoding: $0, as: UTF8.self).contains(#""done":false"#) } == true)
            }
            // EOF next: no terminating zero chunk, so the client knows the response is incomplete.
            #expect(try client.isClosedByPeer())
        }
    }

    @Test func upstreamSilentMidStreamTruncatesTheStream() throws {
        try withProxyAndFake(tokens: 10, configure: { $0.timeouts.upstreamIdle = 0.3 }) { proxy, fake in
            fake.stepMode = true
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(StreamingTests.post("/api/generate", #"{"model":"mistral:7b","prompt":"hi"}"#))
            fake.allowLines(1)
            #expect(try client.readHead().status == 200)
            #expect(try client.readChunk().data != nil)
            // No more lines are allowed: the idle timeout ends the stream without a zero chunk.
            #expect(try client.isClosedByPeer())
            #expect(fake.waitForCancellations(1, timeoutSeconds: eventTimeout))
        }
    }

    /// Parses a JSON object body.
    static func json(_ response: Response) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    /// Checks the error body's shape for the family `path` belongs to; returns the message.
    @discardableResult
    static func expectErrorShape(_ response: Response, path: String, type: String) throws -> String {
        #expect(response.head.header("Content-Type") == "application/json; charset=utf-8")
        let object = try json(response)
        if path.hasPrefix("/v1/messages") {
            #expect(Set(object.keys) == ["type", "error"])
            #expect(object["type"] as? String == "error")
            let error = try #require(object["error"] as? [String: Any])
            #expect(Set(error.keys) == ["type", "message"])
            #expect(error["type"] as? String == "api_error")
            return try #require(error["message"] as? String)
        } else if path.hasPrefix("/v1/") {
            #expect(Set(object.keys) == ["error"])
            let error = try #require(object["error"] as? [String: Any])
            #expect(Set(error.keys) == ["message", "type", "param", "code"])
            #expect(error["type"] as? String == type)
            #expect(error["param"] is NSNull)
            #expect(error["code"] is NSNull)
            return try #require(error["message"] as? String)
        } else {
            #expect(Set(object.keys) == ["error"])
            return try #require(object["error"] as? String)
        }
    }

    static let probes: [(method: String, path: String)] = [
        ("GET", "/api/tags"), ("GET", "/"), ("GET", "/v1/models"), ("POST", "/v1/messages"), ("POST", "/api/generate"),
    ]

    /// A request for a probe, with a small JSON body for POSTs.
    static func request(_ probe: (method: String, path: String)) -> String {
        probe.method == "GET" ? "GET \(probe.path) HTTP/1.1\r\nHost: localhost\r\n\r\n"
            : StreamingTests.post(probe.path, #"{"model":"mistral:7b","prompt":"hi"}"#)
    }

    @Test(arguments: 0..<5)
    func unreachableUpstreamIs502(probe: Int) throws {
        // A bound socket that never listens: connecting to its port is refused, and no one else can take it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) + getsockname(fd, $0, &length) }
        }
        let deadPort = UInt16(bigEndian: sin.sin_port)
        try withProxyAndFake(configure: { $0.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(deadPort)")! }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(Self.request(Self.probes[probe]))
            let response = try client.readResponse()
            #expect(response.status == 502)
            #expect(response.head.header("X-Request-Id") != nil)
            let message = try Self.expectErrorShape(response, path: Self.probes[probe].path, type: "server_error")
            #expect(message.hasPrefix("upstream unavailable"))
            // What failed, not where: the upstream's address stays out of the client's answer.
            #expect(!response.text.contains("\(deadPort)") && !response.text.contains("127.0.0.1"), "\(response.text)")
        }
    }

    @Test(arguments: 0..<5)
    func silentUpstreamIs504(probe: Int) throws {
        try withProxyAndFake(configure: { $0.timeouts.upstreamIdle = 0.3 }) { proxy, fake in
            fake.fault = .hang
            let client = try proxy.tls()
            defer { client.close() }
            try client.send(Self.request(Self.probes[probe]))
            let response = try client.readResponse()
            #expect(response.status == 504)
            let message = try Self.expectErrorShape(response, path: Self.probes[probe].path, type: "server_error")
            #expect(message.hasPrefix("upstream timed out"))
            #expect(fake.requests.map(\.target) == [Self.probes[probe].path])
            // The hung upstream connection is closed, not pooled.
            #expect(fake.waitForOpenConnections(0, timeoutSeconds: eventTimeout))
        }
    }
}
