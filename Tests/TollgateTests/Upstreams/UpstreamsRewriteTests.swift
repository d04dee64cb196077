@testable import Tollgate
import Testing

@Suite struct UpstreamsRewriteTests {
    @Test func hostIsReplacedForAnotherBackend() {
        let head = Array("POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1:11434\r\nContent-Type: application/json\r\nX-Host: 127.0.0.1:11434\r\n\r\n".utf8)
        var out: [UInt8] = []
        RequestRewriter.appendReplacingHost(head, host: Array("10.0.0.6:11434".utf8), to: &out)
        #expect(String(decoding: out, as: UTF8.self)
            == "POST /api/chat HTTP/1.1\r\nHost: 10.0.0.6:11434\r\nContent-Type: application/json\r\nX-Host: 127.0.0.1:11434\r\n\r\n")
    }

    @Test func probeRepliesAreParsedWhateverTheFraming() {
        func body(_ raw: String) -> String? {
            if case .response(200, let b)? = BackendProbe.parse(Array(raw.utf8), atEOF: true) {
                return String(decoding: b, as: UTF8.self)
            }
            return nil
        }
        #expect(body("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello") == "hello")
        #expect(body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n") == "hello")
        #expect(body("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello") == "hello")
        #expect(body("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello") == nil)
        #expect(body("garbage") == nil)
        if case .response(503, _)? = BackendProbe.parse(Array("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".utf8), atEOF: true) {} else {
            Issue.record("a 503 is a response")
        }
        // Before the connection closes: complete once the declared body is here, not before.
        #expect(BackendProbe.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel".utf8), atEOF: false) == nil)
        if case .response(200, _)? = BackendProbe.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".utf8), atEOF: false) {} else {
            Issue.record("a complete body is a response before EOF")
        }
        #expect(BackendProbe.parse(Array("HTTP/1.1 200 OK\r\n\r\nhello".utf8), atEOF: false) == nil)
    }
}
