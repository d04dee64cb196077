@testable import Tollgate
import Testing
import TollgateIO

@Suite("ProxyProtocol: v1 and v2 headers")
struct LimitsProxyProtocolTests {
    func parse(_ bytes: [UInt8]) -> ProxyProtocol.Result { ProxyProtocol.parse(bytes, from: 0, to: bytes.count) }
    func parse(_ text: String) -> ProxyProtocol.Result { parse(Array(text.utf8)) }
    func address(_ text: String) -> SocketAddress { SocketAddress(parsing: text)! }

    @Test func v1TCP4AndTCP6() {
        let line = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
        #expect(parse(line + "GET / HTTP/1.1\r\n") == .complete(source: address("192.0.2.1:56324"), consumed: line.utf8.count))
        let six = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 443\r\n"
        #expect(parse(six) == .complete(source: address("[2001:db8::1]:65535"), consumed: six.utf8.count))
    }

    @Test func v1Unknown() {
        #expect(parse("PROXY UNKNOWN\r\n") == .complete(source: nil, consumed: 15))
        let line = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"
        #expect(parse(line) == .complete(source: nil, consumed: line.utf8.count))
    }

    @Test func v1NeedsMoreUntilCRLF() {
        let line = Array("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".utf8)
        for n in 0..<line.count { #expect(parse(Array(line[..<n])) == .needMore, "after \(n) bytes") }
        // A header that starts mid-buffer.
        let buffer = [0, 0] + line
        #expect(ProxyProtocol.parse(buffer, from: 2, to: buffer.count) == .complete(source: address("192.0.2.1:56324"), consumed: line.count))
    }

    @Test func v1TooLongOrWithoutCRLF() {
        let long = "PROXY UNKNOWN " + String(repeating: "x", count: 100)
        #expect(parse(long) == .invalid("v1 header too long"))
        #expect(parse("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n") == .invalid("v1 header without CRLF"))
    }

    @Test(arguments: ["PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n", "PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n",
                      "PROXY TCP4 192.0.2.1 198.51.100.2 80 http\r\n", "PROXY TCP4 192.0.2.1 198.51.100.2 080 443\r\n",
                      "PROXY TCP4 192.0.2.1 198.51.100.2 123456 443\r\n"])
    func v1BadPorts(_ line: String) {
        #expect(parse(line) == .invalid("v1 bad port"))
    }

    @Test(arguments: [("PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n", "v1 bad address"),
                      ("PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n", "v1 bad address"),
                      ("PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n", "v1 bad field layout"),
                      ("PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", "v1 bad field layout"),
                      ("PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n", "v1 bad field layout"),
                      ("PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n", "v1 bad protocol"),
                      ("PROXY UNKNOWNX\r\n", "v1 bad protocol"),
                      ("GET / HTTP/1.1\r\n", "no PROXY header"),
                      ("PROXY\r\n", "no PROXY header")])
    func v1Malformed(_ line: String, _ reason: String) {
        #expect(parse(line) == .invalid(reason))
    }

    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    func v2(command: UInt8 = 0x21, family: UInt8, body: [UInt8]) -> [UInt8] {
        Self.signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 255)] + body
    }

    @Test func v2IPv4WithTLVsSkipped() {
        let tlv: [UInt8] = [0x04, 0x00, 0x03, 0x61, 0x62, 0x63, 0xEA, 0x00, 0x01, 0x00]  // NOOP and an AWS TLV
        let header = v2(family: 0x11, body: [192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB] + tlv)
        #expect(parse(header + Array("GET".utf8)) == .complete(source: address("192.0.2.1:56324"), consumed: 16 + 12 + tlv.count))
    }

    @Test func v2IPv6() {
        let src: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        let dst: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
        let header = v2(family: 0x21, body: src + dst + [0x1F, 0x90, 0x01, 0xBB])
        #expect(parse(header) == .complete(source: address("[2001:db8::1]:8080"), consumed: 52))
    }

    @Test func v2LocalAndUnspecifiedHaveNoSource() {
        #expect(parse(v2(command: 0x20, family: 0x00, body: [])) == .complete(source: nil, consumed: 16))
        #expect(parse(v2(command: 0x20, family: 0x11, body: [UInt8](repeating: 0, count: 12))) == .complete(source: nil, consumed: 28))
        #expect(parse(v2(family: 0x00, body: [])) == .complete(source: nil, consumed: 16))
        #expect(parse(v2(family: 0x31, body: [UInt8](repeating: 0, count: 216))) == .complete(source: nil, consumed: 232))
    }

    @Test func v2TruncatedNeedsMore() {
        let header = v2(family: 0x11, body: [192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB])
        for n in 0..<header.count { #expect(parse(Array(header[..<n])) == .needMore, "after \(n) bytes") }
    }

    @Test func v2Malformed() {
        var badSignature = v2(family: 0x11, body: [UInt8](repeating: 0, count: 12))
        badSignature[6] = 0x00
        #expect(parse(badSignature) == .invalid("bad v2 signature"))
        #expect(parse(v2(command: 0x11, family: 0x11, body: [UInt8](repeating: 0, count: 12))) == .invalid("v2 bad version"))
        #expect(parse(v2(command: 0x22, family: 0x11, body: [UInt8](repeating: 0, count: 12))) == .invalid("v2 bad command"))
        #expect(parse(v2(family: 0x41, body: [])) == .invalid("v2 bad family"))
        #expect(parse(v2(family: 0x11, body: [1, 2, 3, 4])) == .invalid("v2 address block too short"))
        #expect(parse(v2(family: 0x21, body: [UInt8](repeating: 0, count: 12))) == .invalid("v2 address block too short"))
        #expect(parse(Self.signature + [0x21, 0x11, 0xFF, 0xFF]) == .invalid("v2 header too long"))
    }
}
