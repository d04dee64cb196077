import Testing
import TollgateHTTP

/// The path Tollgate decides on must be the one Go's net/http + gin route on, and the forwarded target must decode
/// (in Go) to that same path.
@Suite struct RequestTargetTests {
    /// (decoded path, forwarded target) or the refusal status.
    private func canonical(_ target: String) -> (path: String, forward: String)? {
        let bytes = Array("POST \(target) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        var head = RequestHead()
        guard RequestParser().parse(bytes, from: 0, to: bytes.count, into: &head) == .complete else { return nil }
        switch RequestTarget.canonicalize(bytes, head) {
        case .success(.asSent):
            return (String(decoding: bytes[head.path], as: UTF8.self), String(decoding: bytes[head.target], as: UTF8.self))
        case .success(.rewritten(let path, let forward)):
            return (String(decoding: path, as: UTF8.self), String(decoding: forward, as: UTF8.self))
        case .failure:
            return nil
        }
    }

    @Test func plainOriginFormIsForwardedAsSent() {
        #expect(canonical("/api/chat?x=%2F")! == ("/api/chat", "/api/chat?x=%2F"))
    }

    @Test func percentEncodedLettersDecodeAsGoDecodesThem() {
        #expect(canonical("/%61pi/pull")! == ("/api/pull", "/api/pull"))
        #expect(canonical("/api/p%75ll?q=1")! == ("/api/pull", "/api/pull?q=1"))
        #expect(canonical("/api/blobs/sha256%3Aab")! == ("/api/blobs/sha256:ab", "/api/blobs/sha256:ab"))
        #expect(canonical("/a%20b%25c")! == ("/a b%c", "/a%20b%25c"))
    }

    @Test func absoluteFormRoutesOnItsPathOnly() {
        #expect(canonical("http://example.com/api/chat?x=1")! == ("/api/chat", "/api/chat?x=1"))
        #expect(canonical("http://example.com")! == ("/", "/"))
        #expect(canonical("http://example.com?x")! == ("/", "/?x"))
        // The authority never becomes part of the path, however it is spelled.
        #expect(canonical("http://host%2Fapi%2Fpull")! == ("/", "/"))
        #expect(canonical("http://%2Fapi%2Fpull?a=b")! == ("/", "/?a=b"))
        #expect(canonical("HTTPS://h/%61pi/pull")! == ("/api/pull", "/api/pull"))
    }

    @Test(arguments: ["/api%2Fpull", "/api%2fpull", "/%2F", "/api/chat%00", "/api/chat%0d%0a", "/api/%7f",
                      "/api/chat%", "/api/chat%4", "/api/chat%zz", "/api/chat%%32F", "/api/chat#x", "/a?b#c",
                      "http://h/api%2Fpull"])
    func ambiguousTargetsAreRefused(_ target: String) {
        #expect(canonical(target) == nil)
    }

    @Test func doubleEncodingDecodesOnceAsGoDoes() {
        // Go decodes %252F to "%2F" (a literal percent sign, then "2F"): a path with no encoded slash left.
        #expect(canonical("/api%252Fpull")! == ("/api%2Fpull", "/api%252Fpull"))
    }

    @Test func everyByteRoundTripsThroughTheForwardedTarget() {
        for byte in 0x20...0xFF where byte != 0x2F && byte != 0x7F {
            let target = "/x" + "%" + String(byte, radix: 16, uppercase: byte % 2 == 0).leftPad(2)
            guard let (path, forward) = canonical(target) else { Issue.record("refused \(target)"); continue }
            // The forwarded target holds only bytes a request line may carry, and decodes to the same path.
            #expect(forward.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x23 && $0 != 0x3F })
            #expect(canonical(forward)?.path == path, "\(target)")
        }
    }
}

private extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
