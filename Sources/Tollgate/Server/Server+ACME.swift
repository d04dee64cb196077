import Glibc
import TollgateIO

extension Server {
    /// With `acme-domain`: starts the ACME thread, which orders the certificate when the store has none for the
    /// names (else when a third of its lifetime is left) and swaps it in through `reloadCertificate`.
    func startACME() {
        guard !config.acmeDomains.isEmpty, !config.listen.isEmpty, let directory = config.acmeDirectory else { return }
        let store = ACMEStore(directory: directory)
        let domains = config.acmeDomains
        let email = config.acmeEmail
        let ca = config.acmeCA
        let caRoot = config.acmeCARoot
        let responder = ServerChallengeResponder(hasTLSListener: !config.listen.isEmpty,
                                                 hasRedirectListener: !config.listenRedirect.isEmpty)
        /// Set once the manager exists: the conversation's waits and cancellation follow its `stopping`.
        let owner = ACMEOwner()
        /// A client for one conversation with the CA (the ACME thread's).
        let connect = { @Sendable () throws(ACMEError) -> ACMEClient in
            let tls: TLSClient
            let key: AccountKey
            do throws(SocketError) {
                tls = try TLSClient(extraRootFile: caRoot)
                key = try store.accountKey()
            } catch {
                throw ACMEError(error.description)
            }
            let client = ACMEClient(directoryURL: ca, transport: ACMEHTTPClient(tls: tls, timeoutMillis: 30_000),
                                    key: key) { seconds in
                // Retry-After between polls, within reason (this is the ACME thread), ended by a stop.
                owner.manager?.pause(seconds: min(max(seconds, 0.2), 10))
            }
            client.cancelled = { owner.manager?.stopping.load(ordering: .relaxed) ?? false }
            return client
        }
        let manager = ACMEManager(domains: domains, store: store, caName: ca, issue: { () throws(ACMEError) in
            try connect().issue(domains: domains, email: email, responder: responder)
        }, install: { [self] (certificatePath: String, keyPath: String) throws(SocketError) in
            try reloadCertificate(certificatePath: certificatePath, keyPath: keyPath)
        }, renewalInfo: { (certificate: TLSCertificate) throws(ACMEError) -> RenewalWindow? in
            guard let id = RenewalWindow.certificateID(certificate) else { return nil }
            return try connect().renewalInfo(certificateID: id)
        }, clock: acmeClock ?? SystemACMEClock(), metrics: metrics)
        owner.manager = manager
        acme = manager
        manager.start()
    }
}

/// The manager a conversation's closures (made before it) belong to; set once, before its thread starts.
final class ACMEOwner: @unchecked Sendable {
    var manager: ACMEManager?
}
