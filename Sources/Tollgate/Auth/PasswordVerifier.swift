import TollgateIO

/// Checks a password against a stored hash.
///
/// Blocking and CPU-bound for the libcrypt formats (bcrypt, SHA-crypt, yescrypt): call on the authenticator's
/// worker threads, never on an event loop. Thread-safe.
public enum PasswordVerifier {
    /// Longer passwords are refused outright, so nobody can make SHA-crypt hash megabytes per attempt.
    public static let maxPasswordBytes = 4096

    /// Per-process key for comparing `{PLAIN}` passwords through HMAC, so the comparison time depends on neither
    /// the contents nor the lengths.
    private static let plainKey = Syscall.randomBytes(32)

    /// Whether `password` matches `hash` (whose format is `format`). Final comparisons are constant-time;
    /// `$apr1$`, `{SHA}`, `{SSHA}` and `{PLAIN}` are computed here, every other format (bcrypt, `$5$`, `$6$`,
    /// `$y$`, `$1$`, DES...) through `PasswordCrypt`, where a libcrypt failure (`*` result) is "no match".
    public static func verify(password: [UInt8], against hash: String, format: HashFormat) -> Bool {
        guard password.count <= maxPasswordBytes else { return false }
        let stored = Array(hash.utf8)
        switch format {
        case .bcrypt, .sha256crypt, .sha512crypt, .yescrypt, .md5crypt, .descrypt, .otherCrypt:
            guard let computed = PasswordCrypt.crypt(password: password, setting: hash) else { return false }
            return Digest.constantTimeEquals(Array(computed.utf8), stored)
        case .apr1:
            guard let salt = APR1.salt(of: stored) else { return false }
            return Digest.constantTimeEquals(APR1.hash(password: password, salt: salt), stored)
        case .sha1:
            guard stored.starts(with: Array("{SHA}".utf8)), let digest = Base64.decode(stored[5...]) else {
                return false
            }
            return Digest.constantTimeEquals(Digest.sha1(password), digest)
        case .ssha:
            guard stored.starts(with: Array("{SSHA}".utf8)), let raw = Base64.decode(stored[6...]),
                  raw.count > 20 else { return false }
            let salt = Array(raw[20...])
            return Digest.constantTimeEquals(Digest.sha1(password + salt), Array(raw[..<20]))
        case .plain:
            guard stored.starts(with: Array("{PLAIN}".utf8)) else { return false }
            let expected = Array(stored[7...])
            return Digest.constantTimeEquals(Digest.hmacSHA256(key: plainKey, password),
                                             Digest.hmacSHA256(key: plainKey, expected))
        }
    }
}
