import TollgateIO

/// Who the client is, for rate limiting and logs: the TCP peer, or what a trusted proxy in front of us says.
///
/// Only trusted proxies may speak for a client. When the peer is trusted, `X-Forwarded-For` is read right to left
/// (each proxy appends the address it saw): trusted entries are skipped and the first untrusted one is the client.
/// Entries left of it were written by the client itself and are never believed, so `X-Forwarded-For: 1.2.3.4` sent
/// by an attacker through a trusted proxy cannot win.
public enum ClientIdentity {
    /// Resolves the client address.
    ///
    /// - `peer`: the TCP peer (or the PROXY protocol source).
    /// - `forwardedFor`: the values of every `X-Forwarded-For` line, in order; they are read as one list joined with
    ///   commas. Entries may be `a.b.c.d`, IPv6, `a.b.c.d:port`, `[v6]` or `[v6]:port`; empty entries are skipped.
    /// - Returns the peer if it is untrusted, if there is no `X-Forwarded-For`, or if a garbage entry is met before
    ///   an untrusted one (we cannot tell who wrote it). If every entry is trusted, the left-most one (as nginx's
    ///   `real_ip_recursive`). Allocates only to return an IPv6 result.
    public static func resolve(peer: SocketAddress.Host, forwardedFor: [ArraySlice<UInt8>],
                               trustedProxies: [CIDR]) -> SocketAddress.Host {
        if trustedProxies.isEmpty || !isTrusted(AddressBits(host: peer), trustedProxies) { return peer }
        var leftmostTrusted: AddressBits?
        for line in forwardedFor.reversed() {
            var end = line.endIndex
            while true {
                var start = end
                while start > line.startIndex && line[start - 1] != UInt8(ascii: ",") { start -= 1 }
                let element = line[start..<end]
                if !isBlank(element) {
                    guard let address = AddressText.parseForwardedElement(element) else { return peer }
                    if !isTrusted(address, trustedProxies) { return address.host }
                    leftmostTrusted = address
                }
                if start == line.startIndex { break }
                end = start - 1
            }
        }
        return leftmostTrusted?.host ?? peer
    }

    private static func isTrusted(_ address: AddressBits, _ trusted: [CIDR]) -> Bool {
        for block in trusted where block.contains(bits: address) { return true }
        return false
    }

    private static func isBlank(_ b: ArraySlice<UInt8>) -> Bool {
        b.allSatisfy { $0 == 0x20 || $0 == 0x09 }
    }
}
