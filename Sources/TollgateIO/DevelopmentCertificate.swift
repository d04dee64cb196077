import CTollgate
import Glibc

/// Creates certificates with OpenSSL: the development certificate `serve` makes when none is given, and the test CA
/// and leaf the tests use.
///
/// The development certificate follows Mozilla's "intermediate" profile as a public one would: 90 days, P-256,
/// basicConstraints CA:FALSE and keyUsage digitalSignature (both critical), extendedKeyUsage serverAuth, subject and
/// authority key identifiers, and subjectAltName localhost, 127.0.0.1 and ::1. `serve` renews it at start when it
/// has less than `renewalDays` left.
public enum DevelopmentCertificate {
    /// The development certificate's lifetime in days.
    public static let lifetimeDays = 90
    /// A development certificate with fewer days than this left is replaced at start.
    public static let renewalDays = 30

    /// What `ensure` does (or, for `check-config`, would do) with the development pair in a directory.
    public enum Plan: Sendable, Equatable {
        /// There is no pair yet: one is created.
        case create
        /// The pair is usable for `daysLeft` more days.
        case use(daysLeft: Int)
        /// The pair is near expiry (or has a lifetime no longer issued, or cannot be read): a new one replaces it.
        case renew(reason: String)
    }

    /// Writes a P-256 key (mode 0600) and certificate. Self-signed unless a CA key and certificate are given.
    public static func generate(keyPath: String, certificatePath: String, commonName: String,
                                subjectAltNames: String?, isCA: Bool = false, days: Int = lifetimeDays,
                                caKeyPath: String? = nil, caCertificatePath: String? = nil) throws(SocketError) {
        var err = [CChar](repeating: 0, count: 1024)
        let rc = tg_generate_certificate(keyPath, certificatePath, commonName, subjectAltNames, isCA ? 1 : 0,
                                         Int32(days), caKeyPath, caCertificatePath, &err, err.count)
        if rc != 0 { throw SocketError("cannot create a certificate at \(certificatePath): \(String(cBuffer: err))") }
    }

    /// The development pair's paths in `directory`.
    public static func paths(in directory: String) -> (certificate: String, key: String) {
        (directory + "/dev-cert.pem", directory + "/dev-key.pem")
    }

    /// What `ensure(in:now:)` would do at time `now` (seconds since the epoch), without changing anything.
    public static func plan(in directory: String, now: Int64 = Int64(time(nil))) -> Plan {
        let (cert, key) = paths(in: directory)
        guard access(cert, F_OK) == 0 || access(key, F_OK) == 0 else { return .create }
        guard access(cert, R_OK) == 0 && access(key, R_OK) == 0 else {
            return .renew(reason: "the pair is incomplete or unreadable")
        }
        let notAfter = tg_certificate_not_after(cert)
        guard notAfter >= 0 else { return .renew(reason: "\(cert) is not a readable certificate") }
        let secondsLeft = notAfter - now
        let daysLeft = Int(secondsLeft / 86_400)
        if secondsLeft < Int64(renewalDays) * 86_400 {
            return .renew(reason: secondsLeft <= 0 ? "it has expired" : "it expires in \(daysLeft) day(s)")
        }
        // One made by an earlier version, valid for longer than is issued now (and than browsers accept).
        if secondsLeft > Int64(lifetimeDays) * 86_400 + 86_400 {
            return .renew(reason: "it is valid for \(daysLeft) more days, longer than the \(lifetimeDays) now issued")
        }
        return .use(daysLeft: daysLeft)
    }

    /// Makes sure a usable development certificate exists in `directory` at time `now`: creates the directory and
    /// the pair if needed, and replaces a pair that `plan` says to renew. Returns the certificate and key paths and
    /// what was done.
    public static func ensure(in directory: String, now: Int64 = Int64(time(nil)))
        throws(SocketError) -> (certificate: String, key: String, plan: Plan) {
        let (cert, key) = paths(in: directory)
        let plan = plan(in: directory, now: now)
        if case .use = plan { return (cert, key, plan) }
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw SocketError("cannot create \(directory): \(Syscall.describe(errno))")
        }
        try generate(keyPath: key, certificatePath: cert, commonName: "localhost",
                     subjectAltNames: "DNS:localhost,IP:127.0.0.1,IP:::1")
        return (cert, key, plan)
    }
}
