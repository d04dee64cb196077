import Glibc
import TollgateIO

/// Ollama's request filters when bound to loopback: the `Host` allow-list (`allowedHostsMiddleware` in
/// server/routes.go) and the CORS origin allow-list (`envconfig.AllowedOrigins`).
enum HostCheck {
    /// Whether a listen address is loopback, which is when Ollama checks `Host` at all.
    static func isLoopbackListenHost(_ host: String) -> Bool {
        let h = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if h.lowercased() == "localhost" { return true }
        if let v4 = parseIPv4(h) { return v4 >> 24 == 127 }
        if let v6 = parseIPv6(h) { return v6 == [UInt8](repeating: 0, count: 15) + [1] }
        return false
    }

    /// Whether Ollama would serve a request carrying this `Host` header (nil or empty: yes).
    static func allows(host header: String?) -> Bool {
        guard let header, !header.isEmpty else { return true }
        let host = splitHostPort(header) ?? header
        if let v4 = parseIPv4(host) {
            let a = v4 >> 24, b = (v4 >> 16) & 0xFF
            // loopback, private (10/8, 172.16/12, 192.168/16), unspecified
            return a == 127 || a == 10 || (a == 172 && (b & 0xF0) == 16) || (a == 192 && b == 168) || v4 == 0
        }
        if let v6 = parseIPv6(host) {
            let loopback = v6 == [UInt8](repeating: 0, count: 15) + [1]
            let unspecified = v6.allSatisfy { $0 == 0 }
            let uniqueLocal = v6[0] & 0xFE == 0xFC
            let mapped = v6[0..<10].allSatisfy { $0 == 0 } && v6[10] == 0xFF && v6[11] == 0xFF
            if mapped {
                return allows(host: "\(v6[12]).\(v6[13]).\(v6[14]).\(v6[15])")
            }
            return loopback || unspecified || uniqueLocal
        }
        let lower = host.lowercased()
        if lower == "localhost" || lower == localHostname() { return true }
        return lower.hasSuffix(".localhost") || lower.hasSuffix(".local") || lower.hasSuffix(".internal")
    }

    /// Whether the gin-contrib/cors middleware with Ollama's default `OLLAMA_ORIGINS` accepts `origin`.
    static func allows(origin: String) -> Bool {
        let lower = origin.lowercased()
        for scheme in ["app://", "file://", "tauri://", "vscode-webview://", "vscode-file://",
                       "chrome-extension://", "moz-extension://", "safari-extension://"] where lower.hasPrefix(scheme) {
            return true
        }
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            let rest = lower.dropFirst(scheme.count)
            for host in ["localhost", "127.0.0.1", "0.0.0.0"] {
                if rest == host { return true }
                if rest.hasPrefix(host + ":"), rest.count > host.count + 1,
                   rest.dropFirst(host.count + 1).allSatisfy({ $0.isASCII && $0.isNumber }) {
                    return true
                }
            }
        }
        return false
    }

    /// Go's `net.SplitHostPort` host part, or nil when it would fail (then Ollama uses the whole header).
    static func splitHostPort(_ s: String) -> String? {
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            let after = s[s.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            return String(s[s.index(after: s.startIndex)..<close])
        }
        let colons = s.filter { $0 == ":" }.count
        guard colons == 1, let colon = s.firstIndex(of: ":") else { return nil }
        return String(s[..<colon])
    }

    private static func localHostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "" }
        let name = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: name, as: UTF8.self).lowercased()
    }

    /// An IPv4 literal as a big-endian-ordered UInt32, or nil.
    static func parseIPv4(_ s: String) -> UInt32? {
        var addr = in_addr()
        guard !s.isEmpty, s.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 46 }),
              inet_pton(AF_INET, s, &addr) == 1 else { return nil }
        return UInt32(bigEndian: addr.s_addr)
    }

    /// An IPv6 literal's 16 bytes (zone suffix ignored), or nil.
    static func parseIPv6(_ s: String) -> [UInt8]? {
        let bare = s.split(separator: "%", maxSplits: 1).first.map(String.init) ?? s
        guard bare.contains(":"), case .v6(let bytes) = SocketAddress.parseHost(bare) else { return nil }
        return bytes
    }
}
