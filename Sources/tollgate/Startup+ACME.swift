import Glibc
import Tollgate
import TollgateIO

extension Startup {
    /// With `acme-domain`: which certificate the TLS listeners start with, set in `config` (the ACME thread swaps
    /// in the issued one later). The stored ACME certificate when it covers the names and has not expired (no new
    /// order at restart); else the configured cert and key; else a self-signed certificate for the names, kept in
    /// the store. Returns check-config's line about ACME. `serve` creates the store and the self-signed pair;
    /// check-config and a reload change nothing.
    static func chooseACMECertificate(_ config: inout ServerConfig, usersPath: String?, mode: Mode,
                                      now: Int64 = Int64(time(nil))) throws -> String {
        let state = StateDatabase.directory(configured: config.stateDirectory, usersPath: usersPath)
        let store = ACMEStore(directory: ACMEStore.directory(inStateDirectory: state))
        config.acmeDirectory = store.directory
        let names = config.acmeDomains.joined(separator: ", ")
        let ca = config.acmeCA
        if mode == .serve {
            do {
                try store.prepare()
            } catch {
                throw StartupError("acme: \(error.description)")
            }
        }
        var stored: StoredCertificate?
        do {
            stored = try store.issued()
        } catch {
            if mode == .serve { note("warning: acme: \(error.description); ordering a new certificate") }
        }
        if let stored, stored.certificate.notAfter > now {
            config.certificatePath = store.chainPath
            config.keyPath = store.keyPath
            let days = (stored.certificate.notAfter - now) / 86_400
            let renewal = stored.covers(config.acmeDomains)
                ? (stored.renewalDue <= now ? "renewal due now" : "renewed in \((stored.renewalDue - now + 86_399) / 86_400) day(s)")
                : "issued for \(stored.domains.joined(separator: ", ")): a certificate for the new names is ordered at start"
            if mode == .serve {
                note("acme: serving the certificate \(store.chainPath) for \(names), expires in \(days) day(s) (\(renewal))")
            }
            return "acme: certificate for \(names) from \(ca), stored in \(store.directory): expires in \(days) day(s), \(renewal)"
        }
        if let cert = config.certificatePath {
            if mode == .serve { note("acme: serving \(cert) until \(ca) issues a certificate for \(names)") }
            return "acme: certificate for \(names) from \(ca), stored in \(store.directory): none issued yet; serve "
                + "starts with \(cert) and orders one"
        }
        if mode == .serve {
            do {
                try store.ensureSelfSigned(domains: config.acmeDomains, now: now)
            } catch {
                throw StartupError("acme: \(error.description)")
            }
            note("acme: serving a self-signed certificate for \(names) until \(ca) issues one (clients see "
                 + "certificate errors until then)")
        }
        if mode != .check {
            config.certificatePath = store.selfSignedPath
            config.keyPath = store.selfSignedKeyPath
        }
        return "acme: certificate for \(names) from \(ca), stored in \(store.directory): none issued yet; serve starts "
            + "with a self-signed certificate and orders one"
    }
}
