import CTollgate

/// The TLS-ALPN-01 challenge certificates (RFC 8737) every TLS listener answers with while the CA validates them:
/// a handshake offering ALPN "acme-tls/1" with a listed domain's SNI gets that certificate alone, and
/// `TLSSession.answeredACMEChallenge` then tells the connection to end. Process-wide; any thread.
public enum TLSALPNChallenges {
    /// Starts answering for `domain` with `certificate` and `key` (PEM), replacing an earlier answer for it; false
    /// when 64 are pending already.
    @discardableResult
    public static func set(domain: String, certificate: [UInt8], key: [UInt8]) -> Bool {
        certificate.withUnsafeBufferPointer { c in
            key.withUnsafeBufferPointer { k in
                c.withMemoryRebound(to: CChar.self) { c in
                    k.withMemoryRebound(to: CChar.self) { k in
                        tg_acme_tls_challenge_set(domain, c.baseAddress, c.count, k.baseAddress, k.count) == 0
                    }
                }
            }
        }
    }

    /// Stops answering for `domain`.
    public static func remove(domain: String) {
        tg_acme_tls_challenge_remove(domain)
    }
}
