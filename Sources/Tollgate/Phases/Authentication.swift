import TollgateHTTP
import TollgateIO

/// The password check of the credentials `CredentialHeaders` read: the verified-credential cache answers on the
/// loop, a password check runs on the authenticator's threads while the exchange waits without blocking. A login
/// that verifies is remembered on its connection for a minute (`VerifiedLogin`).
final class Authentication: ConnectionPhase {
    let auth: Authenticator
    /// Counts failed logins beyond this process (the fleet's throttle), when the worker has one.
    let throttle: any LoginThrottleStore
    let realm: String

    init?(config: ServerConfig, worker: Worker) {
        guard let auth = worker.authenticator, let throttle = worker.loginThrottle else { return nil }
        self.auth = auth
        self.throttle = throttle
        realm = config.realm
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        // The tag first: a remembered login leaves none, and copying the optional out to look costs more.
        if ex.login == nil { return .next }
        guard let login = ex.login else { return .next }
        ex.login = nil
        if let signed = login.signed { return authenticateSigned(signed, login, ex, on: c) }
        let key = LoginThrottle.Key(clientIP: login.clientIP, user: login.credentials.user)
        if let apiKey = login.key, let ring = c.worker.keys {
            let generation = auth.usersGeneration
            return decideKey(ex, generation: generation, auth.checkKey(apiKey.token, claimedUser: apiKey.claimedUser,
                                               throttleUser: login.credentials.user, clientIP: login.clientIP,
                                               throttle: login.throttle, ring: ring), key, on: c)
        }
        // The users' generation as the check starts: a reload while the password is hashed makes the remembered
        // login stale at once, so the next request is checked against the new users.
        let generation = auth.usersGeneration
        let box = UncheckedBox((c, ex, self))
        let loop = c.worker.loop
        let check = auth.check(login.credentials, clientIP: login.clientIP, throttle: login.throttle) { outcome in
            loop.execute {
                let (c, ex, phase) = box.value
                ex.phases.resume(ex, on: c) { phase.decide(ex, outcome, key, generation: generation, on: c) }
            }
        }
        switch check {
        case .done(let outcome): return decide(ex, outcome, key, generation: generation, on: c)
        case .pending: return .wait
        }
    }

    private func decide(_ ex: Exchange, _ outcome: AuthOutcome, _ key: LoginThrottle.Key, generation: Int,
                        on c: ClientConnection) -> PhaseOutcome {
        switch outcome {
        case .allowed(let user):
            ex.user = user
            ex.authResult = .allowed
            if let fingerprint = ex.credentialFingerprint {
                c.verifiedLogin = VerifiedLogin(fingerprint: fingerprint, user: user, generation: generation,
                                                until: c.worker.loop.now &+ Authentication.loginMemoNanos,
                                                client: ex.client)
            }
            return .next
        case .denied:
            ex.authResult = .denied
            throttle.recordFailure(key)
            return .answer(Authentication.unauthorized("invalid username or password", realm: realm), .rejected)
        case .throttled(let seconds):
            ex.authResult = .throttled
            return .answer(Authentication.throttled(seconds), .rejected)
        case .overloaded:
            ex.authResult = .overloaded
            return .answer(ErrorResponse(status: 503, message: "too many password checks in progress; retry shortly",
                                         headers: [("Retry-After", "1")]), .rejected)
        }
    }

    // MARK: API keys (begin)

    /// The exchange's outcome for a key login, checked on the spot (`Authenticator.checkKey`).
    private func decideKey(_ ex: Exchange, generation: Int, _ outcome: Authenticator.KeyLogin, _ key: LoginThrottle.Key,
                           on c: ClientConnection) -> PhaseOutcome {
        switch outcome {
        case .allowed(let grant):
            ex.user = grant.user
            ex.keyID = grant.id
            ex.keyModels = grant.models
            ex.authResult = .allowed
            if let fingerprint = ex.credentialFingerprint {
                c.verifiedLogin = VerifiedLogin(fingerprint: fingerprint, user: grant.user,
                                                generation: generation,
                                                until: c.worker.loop.now &+ Authentication.loginMemoNanos,
                                                client: ex.client, keyID: grant.id)
            }
            return .next
        case .denied(let message):
            ex.authResult = .denied
            throttle.recordFailure(key)
            return .answer(Authentication.unauthorized(message, realm: realm), .rejected)
        case .throttled(let seconds):
            ex.authResult = .throttled
            return .answer(Authentication.throttled(seconds), .rejected)
        }
    }

    // MARK: API keys (end)

    /// A verified login is trusted on its connection for a minute at most (the credential cache's TTL is longer).
    static let loginMemoNanos: UInt64 = 60_000_000_000

    /// The 429 of a throttled client prefix, or user from it.
    static func throttled(_ seconds: Int) -> ErrorResponse {
        ErrorResponse(status: 429, message: "too many failed logins from this address; retry in \(seconds) s",
                      headers: [("Retry-After", String(seconds))])
    }

    /// The 401 that asks for Basic credentials in `realm`.
    static func unauthorized(_ message: String, realm: String) -> ErrorResponse {
        ErrorResponse(status: 401, message: message,
                      headers: [("WWW-Authenticate", "Basic realm=\"\(realm)\", charset=\"UTF-8\"")])
    }
}

/// A login this connection verified: the credentials header's keyed hash, the user, the users' generation, expiry,
/// and the client it was verified for.
struct VerifiedLogin {
    var fingerprint: Int
    var user: String
    var generation: Int
    var until: UInt64
    /// The forwarded client it was verified for (`Exchange.client`; nil: the connection's peer). Through a trusted
    /// proxy one connection carries many clients: another client sending the same header is checked as on a
    /// connection of its own (through its throttle), or a client throttled for guessing would learn from a 200
    /// that its guess is the password someone else verified here.
    var client: SocketAddress.Host?
    /// The API key it logged in with (re-checked against the key ring on every reuse), nil for a password.
    var keyID: String? = nil
}
