import TollgateIO

/// How a key is stored: SHA-256 of the whole token (`tg_<id>_<secret>`), so the id is bound to its secret and a
/// hash cannot be moved to another row.
///
/// Why a plain SHA-256 and not HMAC with a server secret, nor bcrypt: the secret is 160 random bits, not a
/// password a person chose, so no dictionary or brute force gets anywhere against its hash and a slow hash would
/// only cost CPU on every request; one SHA-256 and one constant-time compare take about a microsecond. An HMAC
/// key would protect the table only when the database leaks without the key file beside it, both sit in
/// `state-dir` and are backed up together, and losing that key would silently invalidate every issued key.
public enum KeyHash {
    /// The stored form of `token` (32 bytes).
    public static func of(_ token: [UInt8]) -> [UInt8] {
        Digest.sha256(token)
    }

    /// Whether `token` hashes to `stored`: one hash, one constant-time compare.
    public static func matches(_ token: [UInt8], stored: [UInt8]) -> Bool {
        Digest.constantTimeEquals(of(token), stored)
    }
}
