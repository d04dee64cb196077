import TollgateIO

/// An API key as a client presents it: `tg_<id>_<secret>`, the id public (`idLength` characters), the secret
/// `secretLength` characters from the kernel's random source. Both are lowercase RFC 4648 base32 (no `_`, no `:`,
/// no padding), so a key never contains the separators of `user:password` and survives any header or shell.
///
/// `description` shows the id only: a token can be logged or printed in an error without its secret.
public struct APIKeyToken: Sendable, Equatable, CustomStringConvertible {
    /// The key's public id: what `tollgate keys list` shows, the access log names and `revoke` takes.
    public let id: String
    /// The whole token as sent: what is hashed (binding the id to its secret).
    let bytes: [UInt8]

    /// `tg_`
    public static let prefix: [UInt8] = Array("tg_".utf8)
    /// Characters of the id: 60 bits, enough that ids never collide in practice and still short to read aloud.
    public static let idLength = 12
    /// Characters of the secret: 5 bits each, 160 bits in all (the issue asks for at least 128).
    public static let secretLength = 32
    /// The whole token's length.
    public static let length = prefix.count + idLength + 1 + secretLength
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// A fresh key from `random` (default: the kernel's `getrandom`), as text to print once, and its id.
    public static func generate(random: (Int) -> [UInt8] = Syscall.randomBytes) -> APIKeyToken {
        // 256 is a multiple of 32: the low five bits of a uniform byte are uniform, so no character is favoured.
        let idBytes = random(idLength).map { alphabet[Int($0 & 31)] }
        let secretBytes = random(secretLength).map { alphabet[Int($0 & 31)] }
        precondition(idBytes.count == idLength && secretBytes.count == secretLength, "short read from the random source")
        return APIKeyToken(id: String(decoding: idBytes, as: UTF8.self),
                           bytes: prefix + idBytes + [UInt8(ascii: "_")] + secretBytes)
    }

    /// Whether `value` starts like a key (`tg_`): a value that does and is not one is refused as a malformed key
    /// rather than read as something else.
    public static func looksLikeKey(_ value: ArraySlice<UInt8>) -> Bool {
        value.starts(with: prefix)
    }

    /// The token in `value`, or nil unless it is exactly `tg_` + id + `_` + secret in the key alphabet.
    public static func parse(_ value: ArraySlice<UInt8>) -> APIKeyToken? {
        guard value.count == length, value.starts(with: prefix) else { return nil }
        let idStart = value.startIndex + prefix.count
        let idEnd = idStart + idLength
        guard value[idEnd] == UInt8(ascii: "_") else { return nil }
        for (i, b) in zip(value.indices, value) where i != idEnd && i >= idStart {
            guard isKeyCharacter(b) else { return nil }
        }
        return APIKeyToken(id: String(decoding: value[idStart..<idEnd], as: UTF8.self), bytes: Array(value))
    }

    /// As `parse`, from text.
    public static func parse(_ text: String) -> APIKeyToken? {
        parse(Array(text.utf8)[...])
    }

    /// Whether `id` has the shape of a key id (for `keys revoke`, before any lookup).
    public static func isValidID(_ id: String) -> Bool {
        id.utf8.count == idLength && id.utf8.allSatisfy(isKeyCharacter)
    }

    private static func isKeyCharacter(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "2") && b <= UInt8(ascii: "7"))
    }

    /// The token as text, secret included: only for printing it once at creation.
    public var secretText: String { String(decoding: bytes, as: UTF8.self) }

    /// What is stored and compared: see `KeyHash`.
    public var hash: [UInt8] { KeyHash.of(bytes) }

    /// `tg_<id>_…`: never the secret.
    public var description: String { "tg_\(id)_…" }
}
