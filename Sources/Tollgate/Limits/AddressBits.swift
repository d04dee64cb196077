import TollgateIO

/// An IP address as 128 bits, IPv4 stored IPv4-mapped (`::ffff:a.b.c.d`), so one compare serves both families.
///
/// Value type without heap storage: built from a `SocketAddress.Host` without allocating, used as the
/// rate-limit key material and for CIDR matching.
struct AddressBits: Hashable, Sendable {
    /// The first 64 bits, most significant first.
    var hi: UInt64
    /// The last 64 bits.
    var lo: UInt64

    /// The top 96 bits of an IPv4-mapped address.
    static let v4MappedLo: UInt64 = 0x0000_FFFF_0000_0000

    init(hi: UInt64, lo: UInt64) {
        self.hi = hi
        self.lo = lo
    }

    /// An IPv4 address in host byte order (`a << 24 | b << 16 | c << 8 | d`).
    init(v4HostOrder a: UInt32) {
        self.init(hi: 0, lo: AddressBits.v4MappedLo | UInt64(a))
    }

    /// Reads a `SocketAddress.Host`; a malformed `.v6` (not 16 bytes) reads as `::`.
    init(host: SocketAddress.Host) {
        switch host {
        case .v4(let networkOrder):
            self.init(v4HostOrder: UInt32(bigEndian: networkOrder))
        case .v6(let bytes):
            guard bytes.count == 16 else { self.init(hi: 0, lo: 0); return }
            var hi: UInt64 = 0
            var lo: UInt64 = 0
            for i in 0..<8 { hi = hi << 8 | UInt64(bytes[i]) }
            for i in 8..<16 { lo = lo << 8 | UInt64(bytes[i]) }
            self.init(hi: hi, lo: lo)
        }
    }

    /// True for `::ffff:a.b.c.d`, which is how IPv4 is held here.
    var isV4: Bool { hi == 0 && lo & 0xFFFF_FFFF_0000_0000 == AddressBits.v4MappedLo }

    /// Keeps the first `prefixLength` bits (clamped to 0...128) and zeroes the rest.
    func masked(prefixLength: Int) -> AddressBits {
        let p = min(max(prefixLength, 0), 128)
        if p == 0 { return AddressBits(hi: 0, lo: 0) }
        if p <= 64 { return AddressBits(hi: hi & (UInt64.max << UInt64(64 - p)), lo: 0) }
        if p == 128 { return self }
        return AddressBits(hi: hi, lo: lo & (UInt64.max << UInt64(128 - p)))
    }

    /// Back to a `SocketAddress.Host`: `.v4` for IPv4-mapped bits, else `.v6` (allocates its 16-byte array).
    var host: SocketAddress.Host {
        if isV4 { return .v4(UInt32(truncatingIfNeeded: lo).bigEndian) }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: hi >> UInt64(56 - 8 * i))
            bytes[8 + i] = UInt8(truncatingIfNeeded: lo >> UInt64(56 - 8 * i))
        }
        return .v6(bytes)
    }
}
