import Synchronization
import TollgateIO

/// Reloading a running server: a new configuration and certificate swapped in on every worker without dropping a
/// connection.
extension Server {
    /// Applies a new configuration (SIGHUP after the config file changed) without dropping a connection: new
    /// requests see it, requests in flight finish under the one they started with. Settings the table marks
    /// restart-only (sockets, threads, shared state made at start-up) keep their old values, and the ones that
    /// changed are named in the returned messages as needing a restart (`ServerConfig.reloaded(to:)`). The
    /// certificate is loaded from the (possibly new) paths first: a pair that fails to load fails the reload, which
    /// then changes nothing (the error names the file). Not on an event loop.
    public func reload(_ new: ServerConfig) throws(SocketError) -> [String] {
        let (merged, needRestart) = config.reloaded(to: new)
        let certificate: PreparedCertificate?
        do throws(SocketError) {
            certificate = try prepareCertificate(merged)
        } catch {
            metrics.reloaded("certificate", ok: false)
            metrics.reloaded("config", ok: false)
            throw error
        }
        config = merged
        for worker in workers {
            let w = UncheckedBox(worker)
            let c = UncheckedBox(merged)
            worker.loop.execute { w.value.config = c.value }
        }
        if let certificate {
            install(certificate)
            Diagnostics.info("reloaded certificate \(certificate.path)")
        }
        metrics.reloaded("config", ok: true)
        var messages = ["reloaded the configuration"]
        if !needRestart.isEmpty {
            messages.append("changes to \(needRestart.joined(separator: ", ")) take effect after a restart")
        }
        return messages
    }

    /// Counts a configuration that could not be reloaded.
    public func reloadFailed() {
        metrics.reloaded("config", ok: false)
    }

    /// Loads the certificate and key again (certbot renewal) and swaps them in for new connections; connections
    /// already open keep the session they have. A pair that fails to load changes nothing. Any thread.
    @discardableResult
    public func reloadCertificate() -> Bool {
        do throws(SocketError) {
            guard let certificate = try prepareCertificate(config) else { return true }
            install(certificate)
            Diagnostics.info("reloaded certificate \(certificate.path)")
            return true
        } catch {
            metrics.reloaded("certificate", ok: false)
            Diagnostics.error("\(error.description); keeping the current certificate")
            return false
        }
    }

    /// Loads the pair at `certificatePath` and `keyPath` (a certificate the ACME client just stored) and swaps it in
    /// as `reloadCertificate` does; a pair that fails to load changes nothing and is thrown. Any thread but a loop.
    public func reloadCertificate(certificatePath: String, keyPath: String) throws(SocketError) {
        var paths = config
        paths.certificatePath = certificatePath
        paths.keyPath = keyPath
        do throws(SocketError) {
            guard let certificate = try prepareCertificate(paths) else { return }
            install(certificate)
            Diagnostics.info("reloaded certificate \(certificate.path)")
        } catch {
            metrics.reloaded("certificate", ok: false)
            throw error
        }
    }

    /// A certificate read and built into a context for every worker, not yet in use.
    private struct PreparedCertificate {
        var path: String
        var certificate: TLSCertificate
        var contexts: [TLSContext]
    }

    /// Reads `config`'s pair and builds every worker's context from it; nil without a TLS listener.
    private func prepareCertificate(_ config: ServerConfig) throws(SocketError) -> PreparedCertificate? {
        guard !config.listen.isEmpty, let cert = config.certificatePath, let key = config.keyPath else { return nil }
        // Every context is built before any is swapped in: a pair that fails leaves every worker as it was.
        let certificate = try TLSCertificate(certificatePath: cert, keyPath: key)
        var contexts: [TLSContext] = []
        for library in tlsLibraries {
            contexts.append(try TLSContext(certificate: certificate, library: library,
                                           answersACMEChallenges: !config.acmeDomains.isEmpty))
        }
        return PreparedCertificate(path: cert, certificate: certificate, contexts: contexts)
    }

    /// Swaps a prepared certificate in for new connections on every worker.
    private func install(_ prepared: PreparedCertificate) {
        let certificate = prepared.certificate
        let changed = servedCertificate.withLock { served in
            defer { served = certificate }
            return served.map { !$0.isSame(as: certificate) } ?? false
        }
        // A different certificate: no session authenticated with the old one resumes, as sessions are bound to
        // their certificate (even one a worker still on the old context makes meanwhile); emptying the cache frees
        // their memory now instead of at their expiry.
        if changed { TLSSessionCache.clear() }
        for (worker, tls) in zip(workers, prepared.contexts) {
            let w = UncheckedBox(worker)
            let t = UncheckedBox(tls)
            worker.loop.execute { w.value.tls = t.value }
        }
        metrics.setCertificateExpiry(prepared.certificate.notAfter)
        metrics.reloaded("certificate", ok: true)
    }
}
