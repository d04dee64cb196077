import TollgateIO

extension Doctor {
    /// Warn this many days before the certificate expires (certbot renews at 30 days left).
    static let certificateWarningDays: Int64 = 30

    /// What to do about a certificate Tollgate's ACME client should have renewed.
    static let acmeRenewalFix = "Tollgate renews it itself (acme-domain) once a third of its lifetime is left: the "
        + "acme: lines of its log have the CA's answer (DNS, port 443 reachable, rate limits); a restart tries again at once"

    /// The certificate: readable and matching its key, not expired, chaining to a trusted issuer.
    func certificateChecks() -> [DoctorCheck] {
        let config = subject.config
        guard !config.listen.isEmpty else {
            return [DoctorCheck("certificate", .skip, "no TLS listener (listen is off)")]
        }
        let acme = !config.acmeDomains.isEmpty
        guard let path = config.certificatePath, let keyPath = config.keyPath else {
            if acme {
                return [DoctorCheck("certificate", .warn,
                                    "acme-domain \(config.acmeDomains.joined(separator: ", ")): none issued yet; serve starts "
                                        + "on a self-signed certificate and orders one from \(config.acmeCA)",
                                    fix: "start tollgate with the name's DNS pointing here and port 443 reachable from "
                                        + "the internet; the acme: lines of its log say how the order went")]
            }
            return [DoctorCheck("certificate", .warn,
                                "no cert and key configured: serve uses a self-signed development certificate",
                                fix: "get one from a CA (certbot certonly --standalone -d HOST) and set "
                                    + "cert = /etc/letsencrypt/live/HOST/fullchain.pem, "
                                    + "key = /etc/letsencrypt/live/HOST/privkey.pem")]
        }
        let certificate: TLSCertificate
        do {
            certificate = try TLSCertificate(certificatePath: path, keyPath: keyPath)
            _ = try TLSContext(certificate: certificate, library: TLSLibrary())
        } catch {
            return [DoctorCheck("certificate", .fail, error.description,
                                fix: "point cert at the PEM chain (fullchain.pem) and key at its private key, "
                                    + "readable by the user tollgate runs as")]
        }
        var checks: [DoctorCheck] = []
        let now = host.now()
        let until = Doctor.utcDate(certificate.notAfter)
        let daysLeft = (certificate.notAfter - now) / 86_400
        if certificate.notAfter <= now {
            checks.append(DoctorCheck("certificate", .fail, "\(path) expired on \(until)",
                                      fix: acme ? Doctor.acmeRenewalFix : "renew it (certbot renew), then tollgate reload"))
        } else if daysLeft < Doctor.certificateWarningDays {
            checks.append(DoctorCheck("certificate", .warn, "\(path) expires in \(daysLeft) day(s), on \(until)",
                                      fix: acme ? Doctor.acmeRenewalFix
                                          : "renew it (certbot renew; is certbot.timer running?), then tollgate reload"))
        } else {
            checks.append(DoctorCheck("certificate", .ok, "\(path) matches its key, \(daysLeft) days left (until \(until))"))
        }
        // Verified at a moment the certificate is valid, so an expired one is reported once, above.
        let verdict = host.verifyChain(certificate, caFile: subject.caFile, at: max(1, min(now, certificate.notAfter - 1)))
        if verdict.verified {
            checks.append(DoctorCheck("certificate chain", .ok, "chains to a trusted root (issuer \(verdict.issuer))"))
        } else if verdict.selfSigned {
            checks.append(DoctorCheck("certificate chain", .warn, "\(path) is self-signed: clients must skip "
                                      + "verification (curl -k) or be given it",
                                      fix: "get a certificate from a CA: certbot certonly --standalone -d HOST"))
        } else {
            checks.append(DoctorCheck("certificate chain", .fail, "\(path) does not chain to a trusted root: "
                                      + "\(verdict.reason) (issuer \(verdict.issuer))",
                                      fix: "use the full chain (certbot's fullchain.pem: the certificate, then its "
                                          + "intermediates), not cert.pem"))
        }
        return checks
    }
}
