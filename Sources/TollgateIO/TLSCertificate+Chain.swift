import CTollgate
import Glibc

/// What verifying a certificate file's chain found: OpenSSL's verify code and reason, and the leaf's issuer.
public struct CertificateChainVerdict: Sendable, Equatable {
    /// `X509_V_OK` (0) when the leaf chains to a trusted root through the file's intermediates; OpenSSL's verify
    /// error otherwise; -1 when the file held no certificate.
    public var code: Int32
    /// OpenSSL's reason ("unable to get local issuer certificate"); empty when it verified.
    public var reason: String
    /// The leaf's issuer, as OpenSSL prints a name on one line ("/CN=Test CA").
    public var issuer: String

    /// True when the chain verified.
    public var verified: Bool { code == 0 }
    /// True when the leaf signs itself (`X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT`): a development certificate.
    public var selfSigned: Bool { code == 18 }
}

extension TLSCertificate {
    /// Verifies the certificate file's first certificate against the rest of the file (the intermediates, as
    /// certbot's fullchain.pem holds them) and a trust store: `caFile` when given, else the system's default
    /// (OpenSSL's default paths), as a client would at `time`. Reads the CA files: blocking, never on a loop.
    public func verifyChain(caFile: String? = nil, at time: Int64) -> CertificateChainVerdict {
        var err = [CChar](repeating: 0, count: 256)
        var issuer = [CChar](repeating: 0, count: 256)
        let errCount = err.count
        let issuerCount = issuer.count
        let code = certificatePEM.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { pem in
                tg_certificate_verify_chain_pem(pem.baseAddress, pem.count, caFile, time,
                                                &err, errCount, &issuer, issuerCount)
            }
        }
        return CertificateChainVerdict(code: code, reason: String(cBuffer: err), issuer: String(cBuffer: issuer))
    }
}
