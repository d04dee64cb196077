import Glibc

/// Where and how a `RedisClient` connects: parsed from `redis://[[user]:password@]host:port[/db]`, plus timeouts.
///
/// The host is a numeric IPv4/IPv6 address, `localhost`, or a name resolved once by `resolve()` (blocking
/// `getaddrinfo`, so call it at start-up, never on an event loop). The port defaults to 6379, the database to 0.
public struct RedisConfiguration: Sendable, Equatable {
    /// The host as written in the URL (brackets removed for IPv6).
    public var host: String
    /// The TCP port.
    public var port: UInt16
    /// The ACL user for `AUTH user password` (Redis 6+), or nil for `AUTH password`.
    public var username: String?
    /// The password for `AUTH`, or nil to skip `AUTH`.
    public var password: String?
    /// The database for `SELECT`; 0 skips `SELECT`.
    public var database: Int
    /// A command with no reply after this long closes the connection (checked by the loop's sweep, so it fires up
    /// to one loop tick later).
    public var commandTimeoutMillis: UInt64 = 250
    /// A connect that has not completed after this long is abandoned.
    public var connectTimeoutMillis: UInt64 = 1_000
    /// First delay before reconnecting; doubled after each failed attempt up to `maxBackoffMillis`. Each wait is
    /// drawn between half and all of the current value (jitter).
    public var initialBackoffMillis: UInt64 = 100
    /// The longest delay between reconnect attempts.
    public var maxBackoffMillis: UInt64 = 5_000
    /// Commands waiting for replies at most; more fail at once with `RedisError.backlogFull`, so a stalled server
    /// cannot grow memory without bound.
    public var maxPending = 65_536

    /// A configuration for a server at `host:port`.
    public init(host: String, port: UInt16 = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`; nil when the scheme, port or database is wrong.
    /// The password may be percent-encoded.
    public init?(url: String) {
        let scheme = "redis://"
        guard url.hasPrefix(scheme) else { return nil }
        var rest = Substring(url.dropFirst(scheme.count))
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = userinfo[..<colon]
                guard let u = RedisConfiguration.percentDecode(user),
                      let p = RedisConfiguration.percentDecode(userinfo[userinfo.index(after: colon)...]) else { return nil }
                username = user.isEmpty ? nil : u
                password = p
            } else {
                // `redis://secret@host` is the password alone, as redis-cli reads it.
                guard let p = RedisConfiguration.percentDecode(userinfo) else { return nil }
                password = p
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard db.allSatisfy({ $0.isASCII && $0.isNumber }), db.count <= 5, let n = Int(db) else { return nil }
                database = n
            }
        }
        var host: Substring
        var port: UInt16 = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = UInt16(after.dropFirst()), p > 0 else { return nil }
                port = p
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            guard let p = UInt16(rest[rest.index(after: colon)...]), p > 0 else { return nil }
            port = p
        } else {
            host = rest
        }
        guard !host.isEmpty else { return nil }
        self.init(host: String(host), port: port, username: username, password: password, database: database)
    }

    /// The URL without the password (for logs and `check-config`).
    public var redactedURL: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        return "redis://\(auth)\(h):\(port)/\(database)"
    }

    /// The address to connect to: numeric hosts and `localhost` directly, other names through `getaddrinfo`
    /// (blocking; call at start-up).
    public func resolve() throws(SocketError) -> SocketAddress {
        do {
            return try SocketAddress.resolve(host: host, port: port)
        } catch {
            throw SocketError("cannot resolve Redis host \(host): \(error.description)")
        }
    }

    private static func percentDecode(_ s: Substring) -> String? {
        var out: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%") {
                guard it.count >= 2, let hi = hex(it[it.startIndex]), let lo = hex(it[it.startIndex + 1]) else { return nil }
                out.append(hi << 4 | lo)
                it = it.dropFirst(2)
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}
