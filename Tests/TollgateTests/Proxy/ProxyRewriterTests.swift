import Testing
import TollgateHTTP
@testable import Tollgate

@Suite struct ProxyRewriterTests {
    private func upstreamHead(_ raw: String) throws -> String {
        let bytes = Array(raw.utf8)
        var head = RequestHead()
        let r = RequestParser().parse(bytes, from: 0, to: bytes.count, into: &head)
        try #require(r == .complete)
        var out: [UInt8] = []
        var target: [UInt8]?
        if case .success(.rewritten(_, let t)) = RequestTarget.canonicalize(bytes, head) { target = t }
        let parts = RequestRewriter.Parts(upstreamHost: Array("127.0.0.1:11434".utf8),
                                          clientAddress: Array("203.0.113.9".utf8), scheme: "https")
        RequestRewriter.write(head, buffer: bytes, target: target, parts: parts,
                              requestID: RequestID(0x0123_4567_89ab_cdef), into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func hostIsRewrittenAndCredentialsAndHopByHopHeadersAreDropped() throws {
        let text = try upstreamHead(
            "POST /api/chat HTTP/1.1\r\nHost: example.com\r\nAuthorization: Basic YTpi\r\nx-api-key: a:b\r\n" +
            "Proxy-Authorization: x\r\nProxy-Foo: y\r\nOrigin: https://evil\r\nReferer: https://evil/\r\n" +
            "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n" +
            "Upgrade: h2c\r\nExpect: 100-continue\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-Id: spoofed\r\n" +
            "Cookie: session=1\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil\r\n" +
            "User-Agent: curl/8\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        #expect(text == "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1:11434\r\nUser-Agent: curl/8\r\n" +
                "Content-Type: application/json\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n" +
                "X-Request-Id: 0123456789abcdef\r\nContent-Length: 2\r\n\r\n")
    }

    @Test func chunkedIsRedeclaredAndAbsoluteFormBecomesOriginForm() throws {
        let text = try upstreamHead(
            "POST http://example.com/api/generate?x=1 HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(text.hasPrefix("POST /api/generate?x=1 HTTP/1.1\r\nHost: 127.0.0.1:11434\r\n"))
        #expect(text.hasSuffix("Transfer-Encoding: chunked\r\n\r\n"))
    }

    @Test func responseHeadKeepsEndToEndHeadersAndDeclaresItsOwnFraming() throws {
        let raw = Array(("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nDate: x\r\n" +
                         "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n").utf8)
        var head = ResponseHead()
        try #require(ResponseParser().parse(raw, from: 0, to: raw.count, requestWasHead: false, into: &head) == .complete)
        var out: [UInt8] = []
        let mode = ResponseRewriter.bodyMode(head.framing, clientVersion: .http11)
        #expect(mode == .chunkedPassthrough)
        ResponseRewriter.write(head, buffer: raw, mode: mode, requestID: RequestID(0xfedc_ba98_7654_3210), close: true,
                               corsOrigin: "https://app", corsCredentials: true, hsts: ResponseRewriter.hstsLine("max-age=1"), into: &out)
        #expect(String(decoding: out, as: UTF8.self) ==
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nDate: x\r\nTransfer-Encoding: chunked\r\n" +
                "X-Request-Id: fedcba9876543210\r\nStrict-Transport-Security: max-age=1\r\nAccess-Control-Allow-Origin: https://app\r\n" +
                "Vary: Origin\r\nAccess-Control-Allow-Credentials: true\r\nConnection: close\r\n\r\n")
    }

    @Test func anUpstreamsHSTSGivesWayToTollgatesOwn() throws {
        let raw = Array(("HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=5\r\nSTRICT-TRANSPORT-SECURITY: x\r\n"
                         + "Strict-Transport-Securit: kept\r\nContent-Length: 0\r\n\r\n").utf8)
        var head = ResponseHead()
        try #require(ResponseParser().parse(raw, from: 0, to: raw.count, requestWasHead: false, into: &head) == .complete)
        var ours: [UInt8] = []
        ResponseRewriter.write(head, buffer: raw, mode: .length(0), requestID: RequestID(1), close: false,
                               hsts: ResponseRewriter.hstsLine("max-age=63072000"), into: &ours)
        #expect(String(decoding: ours, as: UTF8.self) ==
                "HTTP/1.1 200 OK\r\nStrict-Transport-Securit: kept\r\nContent-Length: 0\r\n"
                + "X-Request-Id: 0000000000000001\r\nStrict-Transport-Security: max-age=63072000\r\n\r\n")
        // Without a line of Tollgate's own (plain HTTP, or `hsts off`), the upstream's passes as any header does.
        var passed: [UInt8] = []
        ResponseRewriter.write(head, buffer: raw, mode: .length(0), requestID: RequestID(1), close: false, into: &passed)
        #expect(String(decoding: passed, as: UTF8.self).contains("Strict-Transport-Security: max-age=5\r\n"))
    }

    @Test func aRewrittenBodyIsRedeclaredWithItsLength() throws {
        for raw in ["POST /api/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"] {
            var head = Array(try upstreamHead(raw).utf8)
            RequestRewriter.replaceFraming(&head, contentLength: 42)
            #expect(String(decoding: head, as: UTF8.self) == "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1:11434\r\n" +
                    "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Request-Id: 0123456789abcdef\r\n" +
                    "Content-Length: 42\r\n\r\n")
        }
    }

    @Test func extraHeadersAndEventStreams() throws {
        let raw = Array("HTTP/1.1 200 OK\r\nContent-Type:  Text/Event-Stream; charset=utf-8\r\nContent-Length: 0\r\n\r\n".utf8)
        var head = ResponseHead()
        try #require(ResponseParser().parse(raw, from: 0, to: raw.count, requestWasHead: false, into: &head) == .complete)
        #expect(ResponseRewriter.isEventStream(head, buffer: raw))
        var out: [UInt8] = []
        ResponseRewriter.write(head, buffer: raw, mode: .length(0), requestID: RequestID(0xfedc_ba98_7654_3210), close: false,
                               extraHeaders: [("X-Tollgate-Lowered", "num_ctx=4096 num_predict=256")], into: &out)
        #expect(String(decoding: out, as: UTF8.self).hasSuffix(
            "X-Request-Id: fedcba9876543210\r\nX-Tollgate-Lowered: num_ctx=4096 num_predict=256\r\n\r\n"))
    }

    @Test(arguments: [(204, false), (101, false), (304, true), (200, true)])
    func aNoContentAnswerNeverDeclaresALength(_ status: Int, _ keepsLength: Bool) throws {
        let raw = Array("HTTP/1.1 \(status) X\r\nContent-Length: 0\r\n\r\n".utf8)
        var head = ResponseHead()
        // As for a HEAD request: no body follows whatever the length says.
        try #require(ResponseParser().parse(raw, from: 0, to: raw.count, requestWasHead: true, into: &head) == .complete)
        var out: [UInt8] = []
        ResponseRewriter.write(head, buffer: raw, mode: .none, requestID: RequestID(0xfedc_ba98_7654_3210), close: false, into: &out)
        #expect(String(decoding: out, as: UTF8.self).contains("Content-Length") == keepsLength)
    }

    @Test func bodyModesFollowTheClientVersion() {
        #expect(ResponseRewriter.bodyMode(.chunked, clientVersion: .http10) == .dechunkToClose)
        #expect(ResponseRewriter.bodyMode(.untilClose, clientVersion: .http11) == .rechunk)
        #expect(ResponseRewriter.bodyMode(.untilClose, clientVersion: .http10) == .untilClose)
        #expect(ResponseRewriter.bodyMode(.contentLength(5), clientVersion: .http10) == .length(5))
    }

    @Test func errorBodiesFollowTheAPIFamily() {
        let e = ErrorResponse(status: 429, message: "slow \"down\"")
        #expect(e.body(for: .ollama) == #"{"error":"slow \"down\""}"#)
        #expect(e.body(for: .openAI) == #"{"error":{"message":"slow \"down\"","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#)
        #expect(e.body(for: .anthropic) == #"{"type":"error","error":{"type":"rate_limit_error","message":"slow \"down\""}}"#)
    }
}
