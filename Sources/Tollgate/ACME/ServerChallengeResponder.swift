import Synchronization
import TollgateIO

/// The HTTP-01 answers the redirect listener gives while the CA validates them (RFC 8555 section 8.3), by token, for
/// the whole process: the ACME thread adds and removes them, every worker's `Redirect` phase reads them.
final class HTTP01Challenges: Sendable {
    static let shared = HTTP01Challenges()
    private let table = Mutex<[String: String]>([:])
    /// Whether any answer is pending: the redirect phase takes no lock while none is.
    private let pending = Atomic<Bool>(false)

    /// Starts answering `token` with `keyAuthorization`.
    func set(token: String, keyAuthorization: String) {
        table.withLock { table in
            table[token] = keyAuthorization
            pending.store(true, ordering: .releasing)
        }
    }

    /// Stops answering `token`.
    func remove(token: String) {
        table.withLock { table in
            table.removeValue(forKey: token)
            pending.store(!table.isEmpty, ordering: .releasing)
        }
    }

    /// The key authorization for `token`, nil when it is not pending.
    func answer(token: String) -> String? {
        guard pending.load(ordering: .acquiring) else { return nil }
        return table.withLock { $0[token] }
    }
}

/// Publishes challenge answers on this server's own listeners: TLS-ALPN-01 on every TLS listener (the client-hello
/// callback, `TLSALPNChallenges`), HTTP-01 on the redirect listener. With a redirect listener HTTP-01 is preferred
/// (plain HTTP on port 80, the challenge every CA and firewall expects); else TLS-ALPN-01, which needs port 443 only.
struct ServerChallengeResponder: ChallengeResponder {
    let challengeTypes: [String]

    init(hasTLSListener: Bool, hasRedirectListener: Bool) {
        var types: [String] = []
        if hasRedirectListener { types.append("http-01") }
        if hasTLSListener { types.append("tls-alpn-01") }
        challengeTypes = types
    }

    func present(_ answer: ChallengeAnswer) {
        switch answer {
        case .http01(let token, let keyAuthorization):
            HTTP01Challenges.shared.set(token: token, keyAuthorization: keyAuthorization)
        case .tlsALPN01(let domain, let certificate, let key):
            TLSALPNChallenges.set(domain: domain, certificate: certificate, key: key)
        }
    }

    func withdraw(_ answer: ChallengeAnswer) {
        switch answer {
        case .http01(let token, _): HTTP01Challenges.shared.remove(token: token)
        case .tlsALPN01(let domain, _, _): TLSALPNChallenges.remove(domain: domain)
        }
    }
}
