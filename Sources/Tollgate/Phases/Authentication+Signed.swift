import TollgateHTTP
import TollgateIO

extension Authentication {
    /// Checks an `ollama` key login on the loop (see `SignedLogins` for why the verification runs here) through
    /// the failed-login throttle, and answers as a password check would: 401 in the caller's API shape with one
    /// message for every reason (the reason goes to the access log and the metrics), 429 while throttled or while
    /// the key holds its share of the replay cache, 503 when the whole cache is full. Nothing is remembered on the
    /// connection: the next signed request is checked again (its signature covers only its own method, path and
    /// `ts`).
    func authenticateSigned(_ request: SignedRequest, _ login: PendingLogin, _ ex: Exchange,
                            on c: ClientConnection) -> PhaseOutcome {
        guard let logins = c.worker.signedLogins else {
            ex.authResult = .denied
            ex.ollamaKeyResult = .unknownKey
            return .answer(Authentication.unauthorized(OllamaKeyResult.refusalMessage, realm: realm), .rejected)
        }
        let key = LoginThrottle.Key(clientIP: login.clientIP, user: login.credentials.user)
        let users = auth.users
        let verifier = c.worker.ed25519
        // Through a trusted proxy (X-Forwarded-For, PROXY protocol) one connection may carry many clients: no
        // identity to accept a repeated signature on, so every repeat is a replay.
        let viaProxy = ex.client != nil || c.clientFromProxyHeader
            || c.worker.config.trustedProxies.contains { $0.contains(c.peerHost) }
        let connection: UInt64? = viaProxy ? nil : c.serial
        let verdict = auth.checkSigned(key, throttle: login.throttle) {
            logins.check(request, users: users, connection: connection, verifier: verifier)
        }
        switch verdict {
        case .allowed(let user, _):
            c.worker.count { $0.ollamaKey[OllamaKeyResult.allowed.rawValue] += 1 }
            ex.user = user
            ex.authResult = .allowed
            return .next
        case .refused(.overloaded):
            c.worker.count { $0.ollamaKey[OllamaKeyResult.overloaded.rawValue] += 1 }
            ex.authResult = .overloaded
            ex.ollamaKeyResult = .overloaded
            return .answer(ErrorResponse(status: 503, message: OllamaKeyResult.overloaded.message,
                                         headers: [("Retry-After", "1")]), .rejected)
        case .keyOverShare(let seconds):
            c.worker.count { $0.ollamaKey[OllamaKeyResult.keyOverShare.rawValue] += 1 }
            ex.authResult = .throttled
            ex.ollamaKeyResult = .keyOverShare
            return .answer(ErrorResponse(status: 429, message: OllamaKeyResult.keyOverShare.message,
                                         headers: [("Retry-After", String(seconds))]), .rejected)
        case .refused(let result):
            c.worker.count { $0.ollamaKey[result.rawValue] += 1 }
            ex.authResult = .denied
            ex.ollamaKeyResult = result
            throttle.recordFailure(key)
            return .answer(Authentication.unauthorized(OllamaKeyResult.refusalMessage, realm: realm), .rejected)
        case .throttled(let seconds):
            c.worker.count { $0.ollamaKey[OllamaKeyResult.throttled.rawValue] += 1 }
            ex.authResult = .throttled
            return .answer(Authentication.throttled(seconds), .rejected)
        }
    }
}
