import Glibc
import TollgateIO

/// A test CA and a leaf certificate it signed (SAN "DNS:localhost,IP:127.0.0.1"), made once per test process in a
/// fresh temporary directory. The CA is the client's only trust anchor, so verification is real.
struct TestCertificates: Sendable {
    /// The CA certificate the clients trust.
    let caCertificatePath: String
    /// The leaf certificate and key the proxy serves.
    let certificatePath: String
    let keyPath: String
    /// The CA's key (tests that issue another leaf).
    var caKeyPath: String { String(caCertificatePath.dropLast("ca.pem".count)) + "ca-key.pem" }

    /// The process-wide pair; generation failures stop the run with OpenSSL's message.
    static let shared: TestCertificates = {
        var template = Array("/tmp/tollgate-e2e-XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("mkdtemp failed: errno \(errno)")
        }
        let base = String(cString: dir)
        let paths = TestCertificates(caCertificatePath: base + "/ca.pem", certificatePath: base + "/leaf.pem",
                                     keyPath: base + "/leaf-key.pem")
        do {
            try DevelopmentCertificate.generate(keyPath: base + "/ca-key.pem", certificatePath: paths.caCertificatePath,
                                                commonName: "Tollgate test CA", subjectAltNames: nil, isCA: true,
                                                days: 2)
            try DevelopmentCertificate.generate(keyPath: paths.keyPath, certificatePath: paths.certificatePath,
                                                commonName: "localhost", subjectAltNames: "DNS:localhost,IP:127.0.0.1",
                                                days: 2, caKeyPath: base + "/ca-key.pem",
                                                caCertificatePath: paths.caCertificatePath)
        } catch {
            fatalError("cannot create test certificates: \(error)")
        }
        // Tests write to sockets the proxy may already have closed; Tollgate's own main ignores SIGPIPE too.
        signal(SIGPIPE, SIG_IGN)
        return paths
    }()
}
