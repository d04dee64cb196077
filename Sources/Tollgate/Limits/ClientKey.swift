import TollgateIO

/// The rate-limit identity of a client address: an IPv4 address, or an IPv6 prefix (a /64 by default, since one
/// subscriber usually gets a whole /64 and can rotate through it at will).
///
/// 16 bytes, no heap storage; hashing and comparing it never allocates.
public struct ClientKey: Hashable, Sendable {
    /// The address, masked to the prefix for IPv6.
    let bits: AddressBits

    init(bits: AddressBits) {
        self.bits = bits
    }

    /// The key for `host`: IPv4 per address, IPv6 per `ipv6PrefixLength` bits (clamped to 0...128).
    /// An IPv4-mapped IPv6 address counts as the IPv4 address it carries.
    public static func of(_ host: SocketAddress.Host, ipv6PrefixLength: Int) -> ClientKey {
        let bits = AddressBits(host: host)
        if bits.isV4 { return ClientKey(bits: bits) }
        return ClientKey(bits: bits.masked(prefixLength: ipv6PrefixLength))
    }
}
