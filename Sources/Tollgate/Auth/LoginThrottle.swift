import TollgateIO

/// The failed-login throttle: failures counted per (client prefix, user) and per client prefix, IPv4 per address and
/// IPv6 per /64 as the rate limiter groups them (one subscriber owns a whole /64 and can rotate through it).
///
/// - Per (prefix, user), `userLimit` failures in the window refuse that user from that prefix: guessing one
///   user's password stops, while others behind the same NAT keep logging in.
/// - Per prefix, `prefixLimit` failures in the window (whichever users they named, unknown ones included) refuse
///   the whole prefix: guessing many users from one /64 stops too. It is `prefixMultiple` times `userLimit`, so
///   a NAT survives two clients with stale passwords (each stops counting once its own user is throttled) before
///   it is throttled as a whole.
///
/// A refused attempt is not counted (as nginx's `limit_req` does not count rejected requests), so a throttle ends
/// when its oldest counted failure leaves the window, whatever the client keeps sending.
///
/// It also remembers which credentials were verified from which prefix (`recordSuccess`, for as long as the
/// credential cache keeps a verdict): a credential verified from a prefix is let through a throttle there, since it
/// caused none of the failures. Only from there: elsewhere, a throttled client presenting a cached right password
/// is refused like any other attempt, so a throttle never becomes an oracle for recently used passwords except to a
/// client sharing the owner's own address or /64. Not thread-safe: the authenticator guards it with its lock.
struct LoginThrottle: Sendable {
    /// Where a login attempt comes from and whom it names.
    struct Key: Hashable, Sendable {
        /// The client's address grouped as the rate limiter groups it.
        var prefix: ClientKey
        /// The bits an IPv6 prefix keeps (for its text form).
        var ipv6PrefixLength: UInt8
        /// The user name as sent (known or not); the fleet's throttle counts it in its NFC form
        /// (`SharedLoginThrottleStore.fleetName`).
        var user: String
    }

    /// The per-prefix limit is this many times the per-(prefix, user) one.
    static let prefixMultiple = 3

    /// Failures per (prefix, user) that throttle it; 0 turns the whole throttle off.
    let userLimit: Int
    /// Failures per prefix, over all users, that throttle it.
    let prefixLimit: Int
    private var byUser: FailureThrottle<Key>
    private var byPrefix: FailureThrottle<ClientKey>
    /// How long a success is remembered.
    let verifiedNanos: UInt64
    /// Credentials verified per prefix: (prefix, the first 16 bytes of the credential's cache key) → until when.
    private var verified: [Verified: UInt64] = [:]
    private let maxVerified: Int

    private struct Verified: Hashable, Sendable {
        var prefix: ClientKey
        var hi: UInt64
        var lo: UInt64

        init(_ prefix: ClientKey, _ credential: [UInt8]) {
            self.prefix = prefix
            var hi: UInt64 = 0
            var lo: UInt64 = 0
            for (i, byte) in credential.prefix(16).enumerated() {
                if i < 8 { hi = hi << 8 | UInt64(byte) } else { lo = lo << 8 | UInt64(byte) }
            }
            self.hi = hi
            self.lo = lo
        }
    }

    /// A throttle after `userLimit` failures per (prefix, user), or `prefixMultiple` × that per prefix, within
    /// `windowNanos`; at most `maxClients` keys in each table.
    init(userLimit: Int, windowNanos: UInt64, verifiedNanos: UInt64 = 300_000_000_000, maxClients: Int = 65_536) {
        self.verifiedNanos = verifiedNanos
        maxVerified = max(1, maxClients)
        self.userLimit = max(0, userLimit)
        let (product, overflow) = self.userLimit.multipliedReportingOverflow(by: LoginThrottle.prefixMultiple)
        prefixLimit = overflow ? Int.max : product
        byUser = FailureThrottle(limit: self.userLimit, windowNanos: windowNanos, maxClients: maxClients)
        byPrefix = FailureThrottle(limit: prefixLimit, windowNanos: windowNanos, maxClients: maxClients)
    }

    /// Whole seconds (at least 1) until `key` may try again, or nil when neither its prefix nor its (prefix, user)
    /// is throttled at `now`.
    mutating func retryAfter(_ key: Key, now: UInt64) -> Int? {
        let user = byUser.retryAfter(key, now: now)
        let prefix = byPrefix.retryAfter(key.prefix, now: now)
        switch (user, prefix) {
        case (nil, nil): return nil
        case (let a?, nil), (nil, let a?): return a
        case (let a?, let b?): return max(a, b)
        }
    }

    /// Records a failure for `key` at `now`; returns what became throttled by it (the moment to log, once).
    mutating func recordFailure(_ key: Key, now: UInt64) -> Throttled? {
        let user = byUser.recordFailure(key, now: now)
        let prefix = byPrefix.recordFailure(key.prefix, now: now)
        if prefix { return .prefix }
        return user ? .user : nil
    }

    /// Remembers that `credential` (its cache key) was verified right from `prefix` at `now`.
    mutating func recordSuccess(_ prefix: ClientKey, credential: [UInt8], now: UInt64) {
        guard userLimit > 0 else { return }
        let key = Verified(prefix, credential)
        if verified[key] == nil, verified.count >= maxVerified {
            verified = verified.filter { $0.value > now }
            while verified.count >= maxVerified * 3 / 4, let any = verified.keys.first { verified[any] = nil }
        }
        let (until, overflow) = now.addingReportingOverflow(verifiedNanos)
        verified[key] = overflow ? .max : until
    }

    /// Whether `credential` was verified right from `prefix` within `verifiedNanos` before `now`.
    func wasVerified(_ prefix: ClientKey, credential: [UInt8], now: UInt64) -> Bool {
        guard let until = verified[Verified(prefix, credential)] else { return false }
        return until > now
    }

    /// What a failure has just throttled.
    enum Throttled: Equatable {
        /// The user, from that prefix.
        case user
        /// The whole prefix, every user.
        case prefix
    }

    /// Keys tracked (per user, per prefix).
    var tracked: (users: Int, prefixes: Int) { (byUser.trackedClients, byPrefix.trackedClients) }
}

extension LoginThrottle.Key {
    /// The key for a login by `user` from `clientIP` (an address as `SocketAddress.hostString` writes it), IPv6
    /// grouped by `ipv6PrefixLength` bits. Text that is not an address (never produced by the server) counts as
    /// `::`, one shared key.
    init(clientIP: String, user: String, ipv6PrefixLength: Int = 64) {
        let bits = AddressText.parse(Array(clientIP.utf8)[...]) ?? AddressBits(hi: 0, lo: 0)
        let length = min(max(ipv6PrefixLength, 0), 128)
        self.init(prefix: ClientKey(bits: bits.isV4 ? bits : bits.masked(prefixLength: length)),
                  ipv6PrefixLength: UInt8(length), user: user)
    }

    /// The prefix as text: `203.0.113.7`, or `2001:db8:1:2::/64` (for logs and the Redis keys).
    var prefixText: String {
        let host = SocketAddress(host: prefix.bits.host, port: 0).hostString
        return prefix.bits.isV4 ? host : host + "/\(ipv6PrefixLength)"
    }
}
