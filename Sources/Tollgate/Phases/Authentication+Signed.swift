import TollgateHTTP
import TollgateIO

extension Authentication {
    /// Checks an `ollama` key login on the loop (see `SignedLogins` for why the verification runs here) through
    /// the failed-login throttle, and answers as a password check would: 401 in the caller's API shape with the
    /// reason, 429 while throttled, 503 when the replay cache is full. A login that verifies is remembered on its
    /// connection until its `ts` leaves the window, a minute at most.
    func authenticateSigned(_ request: SignedRequest, entry: AuthorizedKey?, _ login: PendingLogin, _ ex: Exchange,
                            on c: ClientConnection) -> PhaseOutcome {
        guard let logins = c.worker.signedLogins else {
            ex.authResult = .denied
            return .answer(Authentication.unauthorized(OllamaKeyResult.unknownKey.message, realm: realm), .rejected)
        }
        let key = LoginThrottle.Key(clientIP: login.clientIP, user: login.credentials.user)
        let users = auth.users
        let verifier = c.worker.ed25519
        let connection = c.serial
        let verdict = auth.checkSigned(key, throttle: login.throttle) {
            logins.check(request, entry: entry, users: users, connection: connection, verifier: verifier)
        }
        switch verdict {
        case .allowed(let user, let secondsLeft):
            c.worker.count { $0.ollamaKey[OllamaKeyResult.allowed.rawValue] += 1 }
            ex.user = user
            ex.authResult = .allowed
            if let fingerprint = ex.credentialFingerprint {
                let memo = min(Authentication.loginMemoNanos, UInt64(max(0, secondsLeft)) * 1_000_000_000)
                c.verifiedLogin = VerifiedLogin(fingerprint: fingerprint, user: user, generation: auth.usersGeneration,
                                                until: c.worker.loop.now &+ memo, ollamaKey: ex.ollamaKey)
            }
            return .next
        case .refused(.overloaded):
            c.worker.count { $0.ollamaKey[OllamaKeyResult.overloaded.rawValue] += 1 }
            ex.authResult = .overloaded
            return .answer(ErrorResponse(status: 503, message: OllamaKeyResult.overloaded.message,
                                         headers: [("Retry-After", "1")]), .rejected)
        case .refused(let result):
            c.worker.count { $0.ollamaKey[result.rawValue] += 1 }
            ex.authResult = .denied
            throttle.recordFailure(key)
            return .answer(Authentication.unauthorized(result.message, realm: realm), .rejected)
        case .throttled(let seconds):
            c.worker.count { $0.ollamaKey[OllamaKeyResult.throttled.rawValue] += 1 }
            ex.authResult = .throttled
            return .answer(Authentication.throttled(seconds), .rejected)
        }
    }
}
