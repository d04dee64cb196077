import TollgateIO

/// PROXY protocol v1 (text) and v2 (binary) header parser, for listeners behind load balancers that prepend the
/// original client address to the TCP stream (HAProxy's proxy-protocol.txt).
///
/// Sans-I/O: the caller feeds what it has read so far and gets `.needMore`, `.invalid` (close the connection) or
/// `.complete` with the bytes to skip. Never allocates except for an IPv6 source.
public enum ProxyProtocol {
    /// The outcome of `parse`.
    public enum Result: Sendable, Equatable {
        /// The bytes so far are a valid beginning; read more.
        case needMore
        /// Not a PROXY header, or a malformed one; the reason is for logs.
        case invalid(String)
        /// A whole header of `consumed` bytes. `source` is the client; nil for `UNKNOWN` (v1), `LOCAL`, or an
        /// address family other than IPv4/IPv6 (v2): use the TCP peer then.
        case complete(source: SocketAddress?, consumed: Int)
    }

    /// A v1 header is at most 107 bytes including CRLF.
    public static let maxV1Length = 107
    /// v2 headers longer than this (16 + address block + TLVs) are refused, so the caller's buffer stays bounded.
    public static let maxV2Length = 4096

    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// Parses the header at `buffer[from..<to]`.
    public static func parse(_ buffer: [UInt8], from: Int, to: Int) -> Result {
        guard from >= 0, from <= to, to <= buffer.count else { return .invalid("bad range") }
        let b = buffer[from..<to]
        if b.isEmpty { return .needMore }
        if b.first == v2Signature[0] {
            let n = min(b.count, v2Signature.count)
            guard b.prefix(n).elementsEqual(v2Signature.prefix(n)) else { return .invalid("bad v2 signature") }
            return n < v2Signature.count ? .needMore : parseV2(b)
        }
        let n = min(b.count, v1Prefix.count)
        guard b.prefix(n).elementsEqual(v1Prefix.prefix(n)) else { return .invalid("no PROXY header") }
        return n < v1Prefix.count ? .needMore : parseV1(b)
    }

    /// `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n` or `PROXY UNKNOWN ...\r\n`; single spaces, strict fields.
    static func parseV1(_ b: ArraySlice<UInt8>) -> Result {
        let limit = min(b.endIndex, b.startIndex + maxV1Length)
        guard let lf = b[b.startIndex..<limit].firstIndex(of: 0x0A) else {
            return b.count >= maxV1Length ? .invalid("v1 header too long") : .needMore
        }
        guard lf > b.startIndex, b[lf - 1] == 0x0D else { return .invalid("v1 header without CRLF") }
        let consumed = lf + 1 - b.startIndex
        let line = b[(b.startIndex + v1Prefix.count)..<(lf - 1)]
        if line.starts(with: "UNKNOWN".utf8) {
            guard line.count == 7 || line[line.startIndex + 7] == 0x20 else { return .invalid("v1 bad protocol") }
            return .complete(source: nil, consumed: consumed)
        }
        // Exactly five fields separated by single spaces.
        guard let (proto, afterProto) = field(line, from: line.startIndex), let afterProto,
              let (src, afterSrc) = field(line, from: afterProto), let afterSrc,
              let (dst, afterDst) = field(line, from: afterSrc), let afterDst,
              let (sport, afterSport) = field(line, from: afterDst), let afterSport,
              let (dport, afterDport) = field(line, from: afterSport), afterDport == nil
        else { return .invalid("v1 bad field layout") }
        let isV4: Bool
        if proto.elementsEqual("TCP4".utf8) { isV4 = true }
        else if proto.elementsEqual("TCP6".utf8) { isV4 = false }
        else { return .invalid("v1 bad protocol") }
        guard let source = address(src, v4: isV4), address(dst, v4: isV4) != nil else { return .invalid("v1 bad address") }
        guard let sourcePort = strictPort(sport), strictPort(dport) != nil else { return .invalid("v1 bad port") }
        return .complete(source: SocketAddress(host: source.host, port: sourcePort), consumed: consumed)
    }

    /// The non-empty field starting at `from` and the index after its space, or nil as the second value at the end.
    private static func field(_ line: ArraySlice<UInt8>, from: Int) -> (ArraySlice<UInt8>, Int?)? {
        var i = from
        while i < line.endIndex && line[i] != 0x20 { i += 1 }
        if i == from { return nil }
        return (line[from..<i], i < line.endIndex ? i + 1 : nil)
    }

    /// A v1 address of the announced family.
    private static func address(_ b: ArraySlice<UInt8>, v4: Bool) -> AddressBits? {
        if v4 { return AddressText.parseV4(b).map(AddressBits.init(v4HostOrder:)) }
        return AddressText.parseV6(b)
    }

    /// A v1 port: decimal 0...65535 without leading zeros.
    private static func strictPort(_ b: ArraySlice<UInt8>) -> UInt16? {
        if b.count > 1 && b.first == UInt8(ascii: "0") { return nil }
        return AddressText.parsePort(b)
    }
}
