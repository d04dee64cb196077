/// The password hash formats a users file may hold, recognised from the stored hash's prefix.
public enum HashFormat: Sendable, Equatable, Hashable {
    /// `$2y$`, `$2b$` or `$2a$` bcrypt (`htpasswd -B`) with its cost (4...31), checked with libcrypt.
    case bcrypt(cost: Int)
    /// `$5$` SHA-256-crypt, checked with libcrypt.
    case sha256crypt
    /// `$6$` SHA-512-crypt, checked with libcrypt.
    case sha512crypt
    /// `$y$` yescrypt, checked with libcrypt.
    case yescrypt
    /// `$apr1$` Apache MD5-crypt (`htpasswd -m`, and `htpasswd -c` without `-B`). Weak.
    case apr1
    /// `{SHA}` base64 of an unsalted SHA-1 (`htpasswd -s`). Weak.
    case sha1
    /// `{SSHA}` base64 of SHA-1(password + salt) + salt. Weak.
    case ssha
    /// `{PLAIN}` the password itself. Weak.
    case plain

    /// Recognises `hash`'s format and checks its shape; nil for anything unknown or malformed.
    public init?(hash: String) {
        let bytes = Array(hash.utf8)
        if let cost = HashFormat.bcryptCost(bytes) {
            self = .bcrypt(cost: cost)
        } else if hash.hasPrefix("$5$"), HashFormat.isCryptShaped(bytes, prefix: 3) {
            self = .sha256crypt
        } else if hash.hasPrefix("$6$"), HashFormat.isCryptShaped(bytes, prefix: 3) {
            self = .sha512crypt
        } else if hash.hasPrefix("$y$"), HashFormat.isCryptShaped(bytes, prefix: 3) {
            self = .yescrypt
        } else if hash.hasPrefix("$apr1$"), HashFormat.isCryptShaped(bytes, prefix: 6) {
            self = .apr1
        } else if hash.hasPrefix("{SHA}"), Base64.decode(bytes[5...])?.count == 20 {
            self = .sha1
        } else if hash.hasPrefix("{SSHA}"), let raw = Base64.decode(bytes[6...]), raw.count > 20 {
            self = .ssha
        } else if hash.hasPrefix("{PLAIN}") {
            self = .plain
        } else {
            return nil
        }
    }

    /// Whether libcrypt's `crypt_r` checks this format (the others are implemented in Swift).
    public var usesCrypt: Bool {
        switch self {
        case .bcrypt, .sha256crypt, .sha512crypt, .yescrypt: return true
        case .apr1, .sha1, .ssha, .plain: return false
        }
    }

    /// For weak formats, what is wrong with them ("{SHA} (unsalted SHA-1)"); nil for strong ones.
    public var weakness: String? {
        switch self {
        case .bcrypt, .sha256crypt, .sha512crypt, .yescrypt: return nil
        case .apr1: return "$apr1$ (MD5-crypt)"
        case .sha1: return "{SHA} (unsalted SHA-1)"
        case .ssha: return "{SSHA} (salted SHA-1)"
        case .plain: return "{PLAIN} (the password in clear)"
        }
    }

    /// `$2y$NN$` + 53 characters of bcrypt's alphabet → NN.
    private static func bcryptCost(_ b: [UInt8]) -> Int? {
        guard b.count == 60, b[0] == UInt8(ascii: "$"), b[1] == UInt8(ascii: "2"),
              [UInt8(ascii: "y"), UInt8(ascii: "b"), UInt8(ascii: "a")].contains(b[2]),
              b[3] == UInt8(ascii: "$"), b[6] == UInt8(ascii: "$"),
              isDigit(b[4]), isDigit(b[5]) else { return nil }
        let cost = Int(b[4] - 48) * 10 + Int(b[5] - 48)
        guard (4...31).contains(cost), b[7...].allSatisfy(isCryptChar) else { return nil }
        return cost
    }

    /// `<prefix>fields$...$hash`: at least one `$` after the prefix, non-empty hash, only crypt characters
    /// (and `=`/`,` inside parameter fields such as `rounds=5000`).
    private static func isCryptShaped(_ b: [UInt8], prefix: Int) -> Bool {
        let rest = b[prefix...]
        guard let lastDollar = rest.lastIndex(of: UInt8(ascii: "$")), lastDollar + 1 < b.count else { return false }
        return rest.allSatisfy {
            isCryptChar($0) || $0 == UInt8(ascii: "$") || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: ",")
        }
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    private static func isCryptChar(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || isDigit(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "/")
    }
}
