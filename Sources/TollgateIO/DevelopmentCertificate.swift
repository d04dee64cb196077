import CTollgate
import Glibc

/// Creates certificates with OpenSSL: the development certificate `serve` makes when none is given, and the test CA
/// and leaf the tests use.
public enum DevelopmentCertificate {
    /// Writes a P-256 key (mode 0600) and certificate. Self-signed unless a CA key and certificate are given.
    public static func generate(keyPath: String, certificatePath: String, commonName: String,
                                subjectAltNames: String?, isCA: Bool = false, days: Int = 825,
                                caKeyPath: String? = nil, caCertificatePath: String? = nil) throws(SocketError) {
        var err = [CChar](repeating: 0, count: 1024)
        let rc = tg_generate_certificate(keyPath, certificatePath, commonName, subjectAltNames, isCA ? 1 : 0,
                                         Int32(days), caKeyPath, caCertificatePath, &err, err.count)
        if rc != 0 { throw SocketError("cannot create a certificate at \(certificatePath): \(String(cBuffer: err))") }
    }

    /// Makes sure a development certificate exists in `directory` (creating the directory and the pair if needed);
    /// returns the certificate and key paths and whether they were just created.
    public static func ensure(in directory: String) throws(SocketError) -> (certificate: String, key: String, created: Bool) {
        let cert = directory + "/dev-cert.pem"
        let key = directory + "/dev-key.pem"
        if access(cert, R_OK) == 0 && access(key, R_OK) == 0 { return (cert, key, false) }
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw SocketError("cannot create \(directory): \(Syscall.describe(errno))")
        }
        try generate(keyPath: key, certificatePath: cert, commonName: "localhost",
                     subjectAltNames: "DNS:localhost,IP:127.0.0.1,IP:::1")
        return (cert, key, true)
    }
}
