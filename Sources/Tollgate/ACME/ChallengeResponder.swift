/// What a challenge needs published while the CA validates it.
public enum ChallengeAnswer: Sendable, Equatable {
    /// HTTP-01 (RFC 8555 section 8.3): `GET /.well-known/acme-challenge/<token>` on port 80 answers the key
    /// authorization.
    case http01(token: String, keyAuthorization: String)
    /// TLS-ALPN-01 (RFC 8737): a handshake for `domain` offering ALPN "acme-tls/1" gets this self-signed certificate
    /// (PEM) and key (PEM), then the connection closes.
    case tlsALPN01(domain: String, certificate: [UInt8], key: [UInt8])

    /// The challenge type's name in ACME ("http-01", "tls-alpn-01").
    public var type: String {
        switch self {
        case .http01: return "http-01"
        case .tlsALPN01: return "tls-alpn-01"
        }
    }
}

/// Publishes challenge answers where the CA looks for them (the TLS listener, the redirect listener).
///
/// Called from the ACME thread; implementations hand the answer to the event loops without blocking them.
public protocol ChallengeResponder: Sendable {
    /// The challenge types it can answer now, preferred first ("tls-alpn-01", "http-01").
    var challengeTypes: [String] { get }
    /// Starts answering `answer`.
    func present(_ answer: ChallengeAnswer)
    /// Stops answering `answer`.
    func withdraw(_ answer: ChallengeAnswer)
}
