import Testing
@testable import TollgateHTTP

@Suite("Header kinds and byte helpers")
struct HeaderKindTests {
    @Test("Names are recognised case-insensitively", arguments: [
        ("Host", HeaderKind.host), ("cOnTeNt-LeNgTh", .contentLength), ("TRANSFER-ENCODING", .transferEncoding),
        ("connection", .connection), ("Keep-Alive", .keepAlive), ("Proxy-Connection", .proxyConnection),
        ("proxy-authorization", .proxyAuthorization), ("Proxy-Authenticate", .proxyOther), ("PROXY-X", .proxyOther),
        ("TE", .te), ("Trailer", .trailer), ("Upgrade", .upgrade), ("Expect", .expect),
        ("Authorization", .authorization), ("Origin", .origin), ("Referer", .referer),
        ("X-Forwarded-For", .xForwardedFor), ("x-forwarded-proto", .xForwardedProto), ("X-Request-ID", .xRequestId),
        ("X-API-Key", .xApiKey), ("Content-Type", .contentType), ("Content-Lengthx", .other), ("Hosts", .other),
        ("Proxy", .other), ("X-Proxy-A", .other), ("Accept", .other), ("Te-", .other),
    ])
    func recognition(name: String, kind: HeaderKind) {
        let buffer = bytes(name)
        #expect(HeaderKind.recognize(buffer, 0..<buffer.count) == kind, "\(name)")
    }

    @Test("The parser tags every field with its kind")
    func parserTagsKinds() {
        let (result, head, _) = parseRequest(
            "POST / HTTP/1.1\r\nhOST: h\r\ncOnTeNt-LeNgTh: 2\r\nProxy-Foo: 1\r\nX-Other: 2\r\n\r\n")
        #expect(result == .complete)
        #expect(head.headers.map(\.kind) == [.host, .contentLength, .proxyOther, .other])
        #expect(head.framing == .contentLength(2))
    }

    @Test("equalsLowercased and hasPrefixLowercased ignore ASCII case only")
    func comparisons() {
        let buffer = bytes("xxKeep-ALIVEyy")
        #expect(HTTPBytes.equalsLowercased(buffer, 2..<12, "keep-alive"))
        #expect(!HTTPBytes.equalsLowercased(buffer, 2..<11, "keep-alive"))
        #expect(!HTTPBytes.equalsLowercased(buffer, 2..<12, "keep-alivx"))
        #expect(HTTPBytes.hasPrefixLowercased(buffer, 2..<12, "keep-"))
        #expect(!HTTPBytes.hasPrefixLowercased(buffer, 2..<4, "keep-"))
        #expect(HTTPBytes.equalsLowercased(buffer, 0..<0, ""))
        // "[" is 0x5B, one past "Z": it must not fold onto "{".
        let bracket = bytes("[")
        #expect(!HTTPBytes.equalsLowercased(bracket, 0..<1, "{"))
    }

    @Test("commaSeparated splits and trims list elements, skipping empty ones", arguments: [
        ("close", ["close"]), (" Upgrade ,\tclose ", ["Upgrade", "close"]), (",, a,,b ,", ["a", "b"]),
        ("", []), (" , ", []), ("gzip, chunked", ["gzip", "chunked"]),
    ])
    func commaSeparated(value: String, expected: [String]) {
        let buffer = bytes("<" + value + ">")
        let ranges = HTTPBytes.commaSeparated(buffer, 1..<(buffer.count - 1))
        #expect(ranges.map { text(buffer, $0) } == expected)
    }

    @Test("parseDecimal accepts 1 to 18 plain digits only", arguments: [
        ("0", Int?.some(0)), ("42", 42), ("999999999999999999", 999_999_999_999_999_999),
        ("1000000000000000000", nil), ("", nil), ("+1", nil), ("1 ", nil), ("0x1", nil),
    ])
    func parseDecimal(value: String, expected: Int?) {
        let buffer = bytes(value)
        #expect(HTTPBytes.parseDecimal(buffer, 0..<buffer.count) == expected)
    }
}
