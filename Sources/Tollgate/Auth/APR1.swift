import TollgateIO

/// Apache's MD5-crypt (`$apr1$salt$hash`, what `htpasswd -m` and plain `htpasswd -c` write): FreeBSD's md5crypt
/// with the magic string `$apr1$`, 1000 rounds of MD5.
///
/// Weak by today's standards; implemented so existing files keep working. Pure and thread-safe.
enum APR1 {
    static let magic = Array("$apr1$".utf8)
    private static let itoa64 = Array("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// The salt of a stored `$apr1$` hash: the bytes after the magic up to the next `$`, at most 8.
    static func salt(of hash: [UInt8]) -> [UInt8]? {
        guard hash.starts(with: magic) else { return nil }
        let rest = hash[magic.count...]
        let end = rest.firstIndex(of: UInt8(ascii: "$")) ?? rest.endIndex
        return Array(rest[rest.startIndex..<min(end, rest.startIndex + 8)])
    }

    /// The full `$apr1$salt$hash` string for `password` and `salt` (as bytes).
    static func hash(password: [UInt8], salt: [UInt8]) -> [UInt8] {
        let alternate = Digest.md5(password + salt + password)
        var context = password + magic + salt
        var remaining = password.count
        while remaining > 0 {
            context += alternate.prefix(min(remaining, 16))
            remaining -= 16
        }
        // The original C adds final[0], which is zero at this point, for set bits.
        var bits = password.count
        while bits != 0 {
            context.append(bits & 1 != 0 ? 0 : (password.first ?? 0))
            bits >>= 1
        }
        var final = Digest.md5(context)
        for i in 0..<1000 {
            var round: [UInt8] = []
            round.reserveCapacity(password.count * 2 + salt.count + 16)
            round += i & 1 != 0 ? password : final
            if i % 3 != 0 { round += salt }
            if i % 7 != 0 { round += password }
            round += i & 1 != 0 ? final : password
            final = Digest.md5(round)
        }
        var out = magic + salt + [UInt8(ascii: "$")]
        func to64(_ value: UInt32, _ count: Int) {
            var v = value
            for _ in 0..<count {
                out.append(itoa64[Int(v & 0x3F)])
                v >>= 6
            }
        }
        func triple(_ a: Int, _ b: Int, _ c: Int) -> UInt32 {
            UInt32(final[a]) << 16 | UInt32(final[b]) << 8 | UInt32(final[c])
        }
        to64(triple(0, 6, 12), 4)
        to64(triple(1, 7, 13), 4)
        to64(triple(2, 8, 14), 4)
        to64(triple(3, 9, 15), 4)
        to64(triple(4, 10, 5), 4)
        to64(UInt32(final[11]), 2)
        return out
    }
}
