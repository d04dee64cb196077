import TollgateHTTP
import TollgateIO

extension CredentialHeaders {
    /// An `ollama` key's signature in place of credentials: finds the key in `authorized-keys` (a lookup, no
    /// crypto), works out what the client must have signed for this request (`METHOD,PATH?ts=TS`, the path as
    /// Ollama decodes it, `ts` from the query, which is forwarded to Ollama unchanged: it ignores it), and leaves it
    /// for the failed-login throttle and the verification (`Authentication`). Without `authorized-keys` the form
    /// is refused like any unknown scheme. The lookup here only names the key's user for the log and the throttle;
    /// nothing of it is trusted later.
    func signedLogin(_ signed: SignedCredential, _ ex: Exchange, head: RequestHead, fingerprint: Int,
                     on c: ClientConnection) -> PhaseOutcome {
        guard let logins = c.worker.signedLogins else {
            ex.authResult = .malformed
            return .answer(Authentication.unauthorized(
                "invalid credentials header: ollama key signatures are not accepted here (no authorized-keys)",
                realm: realm), .rejected)
        }
        let entry = logins.entry(for: signed)
        let keyFingerprint = entry?.fingerprint ?? SSHEd25519.fingerprint(blob: signed.blob)
        ex.ollamaKey = keyFingerprint
        ex.attemptedUser = entry?.user
        ex.credentialFingerprint = fingerprint
        let bytes = c.input.bytes
        let query = head.path.upperBound < head.target.upperBound ? bytes[head.path.upperBound..<head.target.upperBound] : []
        let request = SignedRequest(credential: signed, method: ex.methodText, path: ex.path, query: query)
        let clientIP = ex.client.map { SocketAddress(host: $0, port: 0).hostString } ?? c.peerString
        // The throttle counts an unlisted key's failures under its fingerprint (and always per client prefix).
        ex.login = PendingLogin(credentials: Credentials(user: entry?.user ?? keyFingerprint, password: []),
                                clientIP: clientIP, signed: request)
        return .next
    }
}
