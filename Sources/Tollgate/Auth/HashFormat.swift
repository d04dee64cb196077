import TollgateIO

/// The password hash formats a users file may hold, recognised from the stored hash's prefix.
///
/// Everything the system's libcrypt verifies is accepted, as nginx accepts it through `crypt()`: the common formats
/// are recognised by shape, any other (`$7$` scrypt, `$gy$`, `$sha1$`, `_` BSDi DES...) by asking libcrypt.
public enum HashFormat: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// `$2y$`, `$2b$` or `$2a$` bcrypt (`htpasswd -B`) with its cost (4...31), checked with libcrypt.
    case bcrypt(cost: Int)
    /// `$5$` SHA-256-crypt, checked with libcrypt.
    case sha256crypt
    /// `$6$` SHA-512-crypt, checked with libcrypt.
    case sha512crypt
    /// `$y$` yescrypt, checked with libcrypt.
    case yescrypt
    /// `$1$` MD5-crypt (`openssl passwd -1`), checked with libcrypt. Weak.
    case md5crypt
    /// Traditional DES crypt (`htpasswd -d`): two salt and eleven hash characters; only the first 8 bytes of a
    /// password count. Checked with libcrypt. Weak.
    case descrypt
    /// Another method libcrypt verifies, named by its prefix (`$7`, `$gy`, `_`); `legacy` when libcrypt calls it weak.
    case otherCrypt(method: String, legacy: Bool)
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
        } else if hash.hasPrefix("$1$"), HashFormat.isMD5CryptShaped(bytes) {
            self = .md5crypt
        } else if hash.hasPrefix("$apr1$"), HashFormat.isCryptShaped(bytes, prefix: 6) {
            self = .apr1
        } else if hash.hasPrefix("{SHA}"), Base64.decode(bytes[5...])?.count == 20 {
            self = .sha1
        } else if hash.hasPrefix("{SSHA}"), let raw = Base64.decode(bytes[6...]), raw.count > 20 {
            self = .ssha
        } else if hash.hasPrefix("{PLAIN}") {
            self = .plain
        } else if bytes.count == 13, bytes.allSatisfy(HashFormat.isCryptChar) {
            self = .descrypt
        } else if let other = HashFormat.otherCrypt(hash, bytes) {
            self = other
        } else {
            return nil
        }
    }

    /// The formats a users file may hold, for messages.
    public static let expected = "$2y$, $2b$, $2a$, $5$, $6$, $y$, $1$, $apr1$, DES crypt, {SHA}, {SSHA}, {PLAIN}, "
        + "or another method this system's libcrypt verifies"

    /// The format's name for `tollgate users list`: `bcrypt(cost: 12)`, `sha512crypt`, `crypt $7`.
    public var description: String {
        switch self {
        case .bcrypt(let cost): return "bcrypt(cost: \(cost))"
        case .sha256crypt: return "sha256crypt"
        case .sha512crypt: return "sha512crypt"
        case .yescrypt: return "yescrypt"
        case .md5crypt: return "md5crypt"
        case .descrypt: return "descrypt"
        case .otherCrypt(let method, _): return "crypt \(method)"
        case .apr1: return "apr1"
        case .sha1: return "sha1"
        case .ssha: return "ssha"
        case .plain: return "plain"
        }
    }

    /// Whether libcrypt's `crypt_r` checks this format (the others are implemented in Swift).
    public var usesCrypt: Bool {
        switch self {
        case .bcrypt, .sha256crypt, .sha512crypt, .yescrypt, .md5crypt, .descrypt, .otherCrypt: return true
        case .apr1, .sha1, .ssha, .plain: return false
        }
    }

    /// For weak formats, what is wrong with them ("{SHA} (unsalted SHA-1)"); nil for strong ones.
    public var weakness: String? {
        switch self {
        case .bcrypt, .sha256crypt, .sha512crypt, .yescrypt: return nil
        case .otherCrypt(let method, let legacy): return legacy ? "\(method) (a method libcrypt calls legacy)" : nil
        case .md5crypt: return "$1$ (MD5-crypt)"
        case .descrypt: return "DES crypt (only the first 8 characters of a password count)"
        case .apr1: return "$apr1$ (MD5-crypt)"
        case .sha1: return "{SHA} (unsalted SHA-1)"
        case .ssha: return "{SSHA} (salted SHA-1)"
        case .plain: return "{PLAIN} (the password in clear)"
        }
    }

    /// A hash in a method libcrypt verifies that the cases above do not cover: `$id$...` or `_` (BSDi), made of crypt
    /// characters (and `$=,`), whose setting libcrypt accepts. No hash is computed to load it: a line may name any
    /// cost (rounds, memory), and loading a users file must not take what one such line asks. A line whose hash part
    /// is damaged fails every login, as a wrong password does.
    private static func otherCrypt(_ hash: String, _ b: [UInt8]) -> HashFormat? {
        let method: String
        if b.first == UInt8(ascii: "$"),
           let end = b.dropFirst().firstIndex(where: { $0 == UInt8(ascii: "$") || $0 == UInt8(ascii: ",") }), end > 1 {
            method = String(decoding: b[..<end], as: UTF8.self)
        } else if b.first == UInt8(ascii: "_") {
            method = "_"
        } else {
            return nil
        }
        // A method recognised above whose shape did not match is malformed, not another method.
        guard !["$1", "$2a", "$2b", "$2y", "$5", "$6", "$y", "$apr1"].contains(method) else { return nil }
        guard b.count <= 512, isCryptShaped(b, prefix: 1) || method == "_" && b.dropFirst().allSatisfy(isCryptChar),
              PasswordCrypt.checkSetting(hash) != .invalid else { return nil }
        switch method {
        case "_":
            // BSDi: `_`, 4 characters of count, 4 of salt, 11 of hash.
            guard b.count == 20 else { return nil }
        case "$sha1":
            // `$sha1$ROUNDS$SALT$HASH`.
            let parts = b.split(separator: UInt8(ascii: "$"), omittingEmptySubsequences: false)
            guard parts.count == 5, !parts[2].isEmpty, parts[2].allSatisfy(isDigit), !parts[3].isEmpty, !parts[4].isEmpty
            else { return nil }
        default:
            // Whatever the method's parameters, the hash itself follows the last `$` and cannot be empty.
            guard let last = b.lastIndex(of: UInt8(ascii: "$")), last < b.count - 1 else { return nil }
        }
        return .otherCrypt(method: method, legacy: PasswordCrypt.checkSetting(hash) == .legacy)
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

    /// `$1$` + up to 8 salt characters + `$` + 22 hash characters.
    private static func isMD5CryptShaped(_ b: [UInt8]) -> Bool {
        guard let dollar = b.dropFirst(3).firstIndex(of: UInt8(ascii: "$")), dollar - 3 <= 8,
              b.count - dollar - 1 == 22 else { return false }
        return b[3..<dollar].allSatisfy(isCryptChar) && b[(dollar + 1)...].allSatisfy(isCryptChar)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    private static func isCryptChar(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || isDigit(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "/")
    }
}
