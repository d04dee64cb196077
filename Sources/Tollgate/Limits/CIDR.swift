import TollgateIO

/// An address block such as `10.0.0.0/8` or `2001:db8::/32`, for trusted proxies and exempt clients.
///
/// A bare address means one host (`/32` for IPv4, `/128` for IPv6). Host bits below the prefix are ignored
/// (`10.1.2.3/8` equals `10.0.0.0/8`), as nginx does. An IPv4 block matches IPv4 clients, including IPv4-mapped
/// IPv6 ones; `::/0` matches every address.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    /// The network, masked, in the 128-bit form (IPv4 as `::ffff:a.b.c.d`).
    let network: AddressBits
    /// The prefix length in the 128-bit form (an IPv4 `/8` is stored as 104).
    let prefix: Int
    /// Whether the block was written as IPv4.
    let isV4: Bool

    /// Parses `address` or `address/prefix`; nil for anything else (bad address, prefix out of range or not
    /// plain decimal, empty parts, spaces).
    public init?(parsing text: String) {
        let bytes = Array(text.utf8)
        let slash = bytes.firstIndex(of: UInt8(ascii: "/"))
        let addressPart = bytes[..<(slash ?? bytes.endIndex)]
        let isV4 = AddressText.parseV4(addressPart) != nil
        guard let address = AddressText.parse(addressPart) else { return nil }
        let maxLength = isV4 ? 32 : 128
        var length = maxLength
        if let slash {
            let digits = bytes[(slash + 1)...]
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            length = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard length <= maxLength else { return nil }
        }
        self.isV4 = isV4
        self.prefix = isV4 ? length + 96 : length
        self.network = address.masked(prefixLength: prefix)
    }

    /// Whether `host` lies inside this block. Allocation-free.
    public func contains(_ host: SocketAddress.Host) -> Bool {
        contains(bits: AddressBits(host: host))
    }

    /// Whether the 128-bit address lies inside this block.
    func contains(bits: AddressBits) -> Bool {
        bits.masked(prefixLength: prefix) == network
    }

    /// `10.0.0.0/8` or `2001:db8::/32` (IPv6 shown uncompressed but without leading zeros).
    public var description: String {
        if isV4 {
            let a = UInt32(truncatingIfNeeded: network.lo)
            return "\(a >> 24).\(a >> 16 & 255).\(a >> 8 & 255).\(a & 255)/\(prefix - 96)"
        }
        var parts: [String] = []
        for k in 0..<8 {
            let word = k < 4 ? network.hi >> UInt64(48 - 16 * k) : network.lo >> UInt64(48 - 16 * (k - 4))
            parts.append(String(UInt16(truncatingIfNeeded: word), radix: 16))
        }
        return parts.joined(separator: ":") + "/\(prefix)"
    }
}
