import CTollgate
import Glibc

/// An IPv4 or IPv6 address and port, parsed from "host:port" or "[v6]:port".
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    /// The address family and raw bytes.
    public enum Host: Sendable, Equatable {
        case v4(UInt32)          // network byte order
        case v6([UInt8])         // 16 bytes
    }

    public var host: Host
    public var port: UInt16

    public init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses "1.2.3.4:80", "[::1]:80", "localhost:80" (localhost means 127.0.0.1), ":80" (0.0.0.0).
    public init?(parsing text: String) {
        var hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { return nil }
        }
        guard let port = UInt16(portPart), !portPart.isEmpty else { return nil }
        if hostPart.isEmpty { hostPart = "0.0.0.0" }
        if hostPart == "localhost" { hostPart = "127.0.0.1" }
        guard let host = SocketAddress.parseHost(String(hostPart)) else { return nil }
        self.init(host: host, port: port)
    }

    /// Parses a numeric IPv4 or IPv6 address.
    public static func parseHost(_ text: String) -> Host? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return .v4(v4.s_addr) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return .v6(withUnsafeBytes(of: &v6) { Array($0) })
        }
        return nil
    }

    /// Resolves a host for `port`: numeric addresses and `localhost` (127.0.0.1) directly, other names through
    /// `getaddrinfo`, first IPv4 or IPv6 answer (blocking; call at start-up, never on an event loop). The error's
    /// description is the resolver's reason alone, for the caller to put in context.
    public static func resolve(host: String, port: UInt16) throws(SocketError) -> SocketAddress {
        if host == "localhost" { return SocketAddress(host: .v4(UInt32(0x7F00_0001).bigEndian), port: port) }
        if let h = parseHost(host) { return SocketAddress(host: h, port: port) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0, let first = list else { throw SocketError(String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(list) }
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let n = node {
            if let sa = n.pointee.ai_addr {
                if n.pointee.ai_family == AF_INET {
                    let a = UnsafeRawPointer(sa).assumingMemoryBound(to: sockaddr_in.self).pointee
                    return SocketAddress(host: .v4(a.sin_addr.s_addr), port: port)
                }
                if n.pointee.ai_family == AF_INET6 {
                    var a = UnsafeRawPointer(sa).assumingMemoryBound(to: sockaddr_in6.self).pointee
                    let bytes = withUnsafeBytes(of: &a.sin6_addr) { Array($0) }
                    return SocketAddress(host: .v6(bytes), port: port)
                }
            }
            node = n.pointee.ai_next
        }
        throw SocketError("no IPv4 or IPv6 address")
    }

    public var family: Int32 {
        switch host {
        case .v4: return AF_INET
        case .v6: return AF_INET6
        }
    }

    /// The numeric host as UTF-8 bytes, as `hostString` spells it; an IPv4 address is written digit by digit, with
    /// no C string or `String` in between (every accepted connection takes its peer's).
    public var hostBytes: [UInt8] {
        guard case .v4(let a) = host else { return Array(hostString.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(15)
        let value = UInt32(bigEndian: a)
        for shift in stride(from: 24, through: 0, by: -8) {
            let octet = UInt8(truncatingIfNeeded: value >> UInt32(shift))
            if octet >= 100 { out.append(0x30 + octet / 100) }
            if octet >= 10 { out.append(0x30 + octet / 10 % 10) }
            out.append(0x30 + octet % 10)
            if shift > 0 { out.append(0x2E) }
        }
        return out
    }

    /// The numeric host, "127.0.0.1" or "::1".
    public var hostString: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch host {
        case .v4(let a):
            var addr = in_addr(s_addr: a)
            inet_ntop(AF_INET, &addr, &buf, socklen_t(buf.count))
        case .v6(let bytes):
            var addr = in6_addr()
            withUnsafeMutableBytes(of: &addr) { $0.copyBytes(from: bytes) }
            inet_ntop(AF_INET6, &addr, &buf, socklen_t(buf.count))
        }
        return String(cBuffer: buf)
    }

    /// "host:port", with brackets around IPv6.
    public var description: String {
        switch host {
        case .v4: return "\(hostString):\(port)"
        case .v6: return "[\(hostString)]:\(port)"
        }
    }

    /// Calls body with a sockaddr for this address.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch host {
        case .v4(let a):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = in_addr(s_addr: a)
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let bytes):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// Reads a sockaddr_storage filled by accept or getsockname.
    init?(storage: inout sockaddr_storage) {
        switch Int32(storage.ss_family) {
        case AF_INET:
            let sin = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee } }
            self.init(host: .v4(sin.sin_addr.s_addr), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee } }
            var a = sin6.sin6_addr
            let bytes = withUnsafeBytes(of: &a) { Array($0) }
            // An IPv4-mapped address (::ffff:a.b.c.d) is reported as the IPv4 address it is.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                let v4 = UInt32(bytes[12]) | UInt32(bytes[13]) << 8 | UInt32(bytes[14]) << 16 | UInt32(bytes[15]) << 24
                self.init(host: .v4(v4), port: UInt16(bigEndian: sin6.sin6_port))
            } else {
                self.init(host: .v6(bytes), port: UInt16(bigEndian: sin6.sin6_port))
            }
        default:
            return nil
        }
    }
}
