import TollgateIO

/// A certificate as the CA issued it, with its private key.
public struct IssuedCertificate: Sendable {
    /// The chain in PEM, leaf first.
    public var chain: [UInt8]
    /// The leaf's private key in PEM (PKCS#8).
    public var key: [UInt8]
}

extension ACMEClient {
    /// Orders and obtains a certificate for `domains` (RFC 8555 section 7.1's whole flow): registers the account
    /// unless one is in use, answers each pending authorization with the first of `responder`'s challenge types the
    /// CA offers, finalizes with a CSR for a fresh P-256 key and downloads the chain.
    func issue(domains: [String], email: String?, responder: any ChallengeResponder) throws(ACMEError)
        -> IssuedCertificate {
        if accountURL == nil { try register(email: email) }
        let order = try newOrder(domains: domains)
        if order.status == "pending" {
            for url in order.authorizations {
                let authorization = try fetchAuthorization(url)
                guard authorization.status == "pending" else {
                    if authorization.status == "valid" { continue }
                    throw ACMEError("the authorization for \(authorization.domain) is \(authorization.status)")
                }
                // Only a name this order asked for is answered: it goes into a challenge certificate and is matched
                // against handshakes, and a CA (or whoever stands in for it) must not choose what.
                guard domains.contains(where: { $0.lowercased() == authorization.domain.lowercased() }) else {
                    throw ACMEError("the CA asked to validate \(DoctorJSON.quoted(String(authorization.domain.prefix(300)))), "
                                    + "which this order did not name (\(domains.joined(separator: ", ")))")
                }
                guard let challenge = responder.challengeTypes.lazy.compactMap({ type in
                    authorization.challenges.first { $0.type == type }
                }).first else {
                    let offered = authorization.challenges.map(\.type).joined(separator: ", ")
                    throw ACMEError("no challenge for \(authorization.domain) can be answered here (the CA offers "
                        + "\(offered); this server answers \(responder.challengeTypes.joined(separator: ", ")))")
                }
                let answer = try self.answer(challenge, domain: authorization.domain)
                responder.present(answer)
                defer { responder.withdraw(answer) }
                try answerChallenge(challenge.url)
                _ = try awaitAuthorization(url)
            }
        }
        let ready = try awaitOrder(order, until: ["ready", "valid"])
        let certificateKey = P256Key()
        guard let csr = certificateKey.certificateRequest(domains: domains) else {
            throw ACMEError("cannot make a certificate request for \(domains.joined(separator: ", "))")
        }
        let done = ready.status == "valid" ? ready : try finalize(ready, csr: csr)
        guard let url = done.certificate else { throw ACMEError("the order \(done.url) has no certificate URL") }
        return IssuedCertificate(chain: try downloadCertificate(url), key: certificateKey.pem)
    }

    /// What the responder must publish for `challenge`.
    func answer(_ challenge: Challenge, domain: String) throws(ACMEError) -> ChallengeAnswer {
        // A token is base64url (RFC 8555 section 8.1); anything else must not reach a URL path or a file.
        guard !challenge.token.isEmpty, challenge.token.utf8.count <= 256, challenge.token.utf8.allSatisfy(Base64URL.isAlphabet)
        else {
            throw ACMEError("the CA sent a malformed challenge token for \(domain)")
        }
        let keyAuthorization = key.keyAuthorization(token: challenge.token)
        switch challenge.type {
        case "http-01":
            return .http01(token: challenge.token, keyAuthorization: keyAuthorization)
        case "tls-alpn-01":
            let challengeKey = P256Key()
            guard let certificate = challengeKey.challengeCertificate(
                domain: domain, keyAuthorizationDigest: Digest.sha256(Array(keyAuthorization.utf8))) else {
                throw ACMEError("cannot make a TLS-ALPN-01 certificate for \(domain)")
            }
            return .tlsALPN01(domain: domain, certificate: certificate, key: challengeKey.pem)
        default:
            throw ACMEError("the challenge type \(challenge.type) is not supported")
        }
    }
}
