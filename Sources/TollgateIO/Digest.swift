import COpenSSL

/// One-shot message digests, HMAC and constant-time comparison over OpenSSL's libcrypto.
///
/// Thread-safe: every call is independent and allocates nothing shared. This is the only file where the
/// authentication code's OpenSSL hashing calls and their unsafe pointers live.
public enum Digest {
    /// MD5 of `data` (16 bytes). Only for legacy formats (`$apr1$`); never for anything new.
    public static func md5(_ data: [UInt8]) -> [UInt8] {
        digest(data, EVP_md5(), length: 16)
    }

    /// SHA-1 of `data` (20 bytes). Only for legacy formats (`{SHA}`, `{SSHA}`).
    public static func sha1(_ data: [UInt8]) -> [UInt8] {
        digest(data, EVP_sha1(), length: 20)
    }

    /// SHA-256 of `data` (32 bytes).
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        digest(data, EVP_sha256(), length: 32)
    }

    /// HMAC-SHA-256 of `data` under `key` (32 bytes).
    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = withNonNullBytes(key) { k, kCount in
            withNonNullBytes(data) { d, dCount in
                out.withUnsafeMutableBufferPointer { o in
                    HMAC(EVP_sha256(), k, Int32(kCount), d, dCount, o.baseAddress, &length) != nil
                }
            }
        }
        // HMAC-SHA-256 cannot fail short of memory exhaustion; a silent empty MAC would be a security bug.
        guard ok, length == 32 else { fatalError("HMAC-SHA-256 failed") }
        return out
    }

    /// True when `a` and `b` have the same length and the same bytes. Compares every byte whatever the
    /// contents (`CRYPTO_memcmp`); only the lengths are compared in variable time.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in
                CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0
            }
        }
    }

    private static func digest(_ data: [UInt8], _ md: OpaquePointer?, length: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        var written: UInt32 = 0
        let ok = withNonNullBytes(data) { d, count in
            out.withUnsafeMutableBufferPointer { o in
                EVP_Digest(d, count, o.baseAddress, &written, md, nil) == 1
            }
        }
        guard ok, Int(written) == length else { fatalError("EVP_Digest failed") }
        return out
    }

    /// Calls `body` with a pointer that is never NULL, even for an empty array (OpenSSL rejects NULL inputs).
    private static func withNonNullBytes<R>(
        _ bytes: [UInt8], _ body: (UnsafeRawPointer, Int) -> R
    ) -> R {
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return withUnsafePointer(to: &zero) { body(UnsafeRawPointer($0), 0) }
        }
        return bytes.withUnsafeBytes { body($0.baseAddress!, bytes.count) }
    }
}
