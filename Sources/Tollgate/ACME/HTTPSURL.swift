/// An `https://` URL split into what a connection and a request line need.
struct HTTPSURL: Sendable, Equatable {
    /// The host name or IP literal (an IPv6 one without its brackets).
    var host: String
    /// The port (443 unless given).
    var port: UInt16
    /// The origin-form target: path and query, "/" at least.
    var target: String
    /// The `Host` header's value: the host (bracketed for IPv6) and the port when it is not 443.
    var authority: String

    /// Parses `text`; nil for anything but an absolute https URL with a host (userinfo and fragments refused).
    init?(_ text: String) {
        guard text.lowercased().hasPrefix("https://") else { return nil }
        let rest = text.dropFirst("https://".count)
        guard !rest.contains("#"), !rest.contains(where: { $0 == " " || $0.asciiValue.map { $0 < 0x20 } ?? false })
        else { return nil }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        var target = String(rest[authorityEnd...])
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        var host = authority
        var port: UInt16 = 443
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = UInt16(after.dropFirst()), p > 0 else { return nil }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = UInt16(authority[authority.index(after: colon)...]), p > 0 else { return nil }
            port = p
        }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
        self.target = target
        self.authority = authority
    }
}
