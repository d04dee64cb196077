import COpenSSL
import CTollgate

/// An ECDSA P-256 private key: the ACME account key and the key of each certificate ordered (RFC 8555, RFC 7518).
///
/// Immutable after creation, so it may be shared between threads (OpenSSL allows concurrent signing with one
/// `EVP_PKEY`). Owns its `EVP_PKEY` and frees it in `deinit`.
public final class P256Key: @unchecked Sendable {
    let pkey: OpaquePointer

    /// A fresh random key; traps only when OpenSSL cannot make one (no randomness, no memory).
    public init() {
        guard let made = tg_p256_generate() else { fatalError("P-256 key generation failed") }
        pkey = made
    }

    /// The key in unencrypted PEM text (PKCS#8 or SEC1), as `pem` writes it; nil for anything else, another curve
    /// included.
    public init?(pem: [UInt8]) {
        guard let made = pem.withUnsafeBufferPointer({ buffer in
            buffer.withMemoryRebound(to: CChar.self) { tg_p256_from_pem($0.baseAddress, $0.count) }
        }) else { return nil }
        pkey = made
    }

    deinit { EVP_PKEY_free(pkey) }

    /// The private key as PKCS#8 PEM text (for a file of mode 0600).
    public var pem: [UInt8] {
        var out = [CChar](repeating: 0, count: 4096)
        let n = tg_p256_to_pem(pkey, &out, out.count)
        guard n > 0 else { fatalError("writing a P-256 key as PEM failed") }
        return out[0..<n].map { UInt8(bitPattern: $0) }
    }

    /// The public point's coordinates, 32 bytes each, as a JWK's `x` and `y` hold them (RFC 7518 section 6.2.1).
    public var publicCoordinates: (x: [UInt8], y: [UInt8]) {
        var out = [UInt8](repeating: 0, count: 64)
        guard tg_p256_public_xy(pkey, &out) == 0 else { fatalError("reading a P-256 public key failed") }
        return (Array(out[0..<32]), Array(out[32..<64]))
    }

    /// The ES256 signature of `message` as a JWS carries it: r then s, 32 bytes each (RFC 7518 section 3.4).
    public func signES256(_ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        let rc = message.withUnsafeBufferPointer { m in
            // A NULL message pointer is refused by some providers even with length 0: point at the output.
            out.withUnsafeMutableBufferPointer { o in
                tg_es256_sign(pkey, m.count == 0 ? UnsafePointer(o.baseAddress) : m.baseAddress, m.count, o.baseAddress)
            }
        }
        guard rc == 0 else { fatalError("ES256 signing failed") }
        return out
    }

    /// Whether `signature` (r||s, 64 bytes) is this key's ES256 signature of `message`.
    public func verifyES256(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        guard signature.count == 64 else { return false }
        return message.withUnsafeBufferPointer { m in
            signature.withUnsafeBufferPointer { s in
                tg_es256_verify(pkey, m.count == 0 ? s.baseAddress : m.baseAddress, m.count, s.baseAddress) == 1
            }
        }
    }

    /// A DER certificate signing request for `domains` (the first is also the subject's CN), signed by this key;
    /// nil when a name cannot go into a subjectAltName (a comma, a control character).
    public func certificateRequest(domains: [String]) -> [UInt8]? {
        guard let first = domains.first, domains.allSatisfy(Self.isPlainName) else { return nil }
        let san = domains.map { "DNS:" + $0 }.joined(separator: ",")
        var out = [UInt8](repeating: 0, count: 16 << 10)
        let n = tg_csr_der(pkey, first, san, &out, out.count)
        return n > 0 ? Array(out[0..<n]) : nil
    }

    /// The TLS-ALPN-01 challenge certificate for `domain` (RFC 8737 section 3): self-signed by this key, valid for a
    /// week, subjectAltName the domain alone, and the critical acmeIdentifier extension holding
    /// `keyAuthorizationDigest` (SHA-256 of the key authorization, 32 bytes). PEM text; nil for a name that cannot go
    /// into a subjectAltName.
    public func challengeCertificate(domain: String, keyAuthorizationDigest: [UInt8]) -> [UInt8]? {
        guard Self.isPlainName(domain), keyAuthorizationDigest.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 8192)
        let n = tg_acme_alpn_certificate_pem(pkey, domain, keyAuthorizationDigest, &out, out.count)
        return n > 0 ? out[0..<n].map { UInt8(bitPattern: $0) } : nil
    }

    /// A DNS name OpenSSL's subjectAltName syntax takes as one entry: letters, digits, `-`, `.`, `*`, 1 to 253 bytes.
    static func isPlainName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return !bytes.isEmpty && bytes.count <= 253 && bytes.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "*")
        }
    }
}
