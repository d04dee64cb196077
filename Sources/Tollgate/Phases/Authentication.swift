import TollgateHTTP
import TollgateIO

/// The authenticate phase: credentials from Basic, Bearer or x-api-key; the verified-credential cache answers on
/// the loop, a password check runs on the authenticator's threads while the connection waits without blocking.
extension ClientConnection {
    enum PhaseResult {
        case proceed
        case wait
        case reject(ErrorResponse, CloseReason)
    }

    /// Starts authentication for `ex` from the head's credential headers.
    func authenticate(_ ex: Exchange, head: RequestHead) -> PhaseResult {
        guard let auth = worker.authenticator else { return .proceed }
        var authorization: ArraySlice<UInt8>?
        var apiKey: ArraySlice<UInt8>?
        for field in head.headers {
            if field.kind == .authorization { authorization = input[field.value] }
            if field.kind == .xApiKey { apiKey = input[field.value] }
        }
        // The same credentials again on this keep-alive connection, verified recently and with the users unchanged:
        // no decoding, no HMAC, no lock. Only a per-process keyed hash of the header is kept, never the password.
        let fingerprint = ClientConnection.fingerprint(authorization, apiKey)
        if let memo = verifiedLogin, memo.fingerprint == fingerprint, memo.generation == auth.usersGeneration,
           worker.loop.now < memo.until {
            ex.user = memo.user
            ex.authOutcome = "allowed"
            return .proceed
        }
        let credentials: Credentials
        switch CredentialExtractor.extract(authorization: authorization, apiKey: apiKey) {
        case .none:
            ex.authOutcome = "missing"
            return .reject(unauthorized("authentication required: send Basic credentials, or user:password as a Bearer token or x-api-key"), .rejected)
        case .malformed(let why):
            ex.authOutcome = "malformed"
            return .reject(unauthorized("invalid credentials header: \(why)"), .rejected)
        case .found(let c, _):
            credentials = c
        }
        ex.credentialFingerprint = fingerprint
        let clientIP = ex.client.map { SocketAddress(host: $0, port: 0).hostString } ?? peerString
        if let shared = worker.shared, let login = shared.login {
            return sharedLoginGate(ex, credentials, clientIP: clientIP, shared: shared, login: login)
        }
        return checkPassword(ex, credentials, clientIP: clientIP, throttle: true)
    }

    /// Verifies the password (cache, or the pool while the connection waits); `throttle`: apply the local
    /// failed-login throttle.
    func checkPassword(_ ex: Exchange, _ credentials: Credentials, clientIP: String, throttle: Bool) -> PhaseResult {
        guard let auth = worker.authenticator else { return .proceed }
        let box = UncheckedBox((self, ex))
        let loop = worker.loop
        let check = auth.check(credentials, clientIP: clientIP, throttle: throttle) { outcome in
            loop.execute { box.value.0.authenticated(box.value.1, outcome) }
        }
        switch check {
        case .done(let outcome): return result(ex, outcome)
        case .pending: return .wait
        }
    }

    /// A password check finished on the pool; back on the loop. The client may have gone meanwhile.
    func authenticated(_ ex: Exchange, _ outcome: AuthOutcome) {
        guard phase == .exchange, exchange === ex else { return }
        switch result(ex, outcome) {
        case .proceed: admitted(ex)
        case .wait: break
        case .reject(let error, let reason): respond(ex, error, reason: reason)
        }
        if phase != .closed { readAvailable() }
    }

    private func result(_ ex: Exchange, _ outcome: AuthOutcome) -> PhaseResult {
        switch outcome {
        case .allowed(let user):
            ex.user = user
            ex.authOutcome = "allowed"
            if let auth = worker.authenticator, let fingerprint = ex.credentialFingerprint {
                verifiedLogin = VerifiedLogin(fingerprint: fingerprint, user: user, generation: auth.usersGeneration,
                                              until: worker.loop.now &+ ClientConnection.loginMemoNanos)
            }
            return .proceed
        case .denied:
            ex.authOutcome = "denied"
            if let shared = worker.shared, let login = shared.login {
                recordSharedLoginFailure(ex.client.map { SocketAddress(host: $0, port: 0).hostString } ?? peerString,
                                         shared: shared, login: login)
            }
            return .reject(unauthorized("invalid username or password"), .rejected)
        case .throttled(let seconds):
            ex.authOutcome = "throttled"
            return .reject(ClientConnection.loginThrottled(seconds), .rejected)
        case .overloaded:
            ex.authOutcome = "overloaded"
            return .reject(ErrorResponse(status: 503, message: "too many password checks in progress; retry shortly",
                                         headers: [("Retry-After", "1")]), .rejected)
        }
    }

    /// The 429 of a throttled client IP.
    static func loginThrottled(_ seconds: Int) -> ErrorResponse {
        ErrorResponse(status: 429, message: "too many failed logins from this address; retry in \(seconds) s",
                      headers: [("Retry-After", String(seconds))])
    }

    private func unauthorized(_ message: String) -> ErrorResponse {
        ErrorResponse(status: 401, message: message,
                      headers: [("WWW-Authenticate", "Basic realm=\"\(worker.config.realm)\", charset=\"UTF-8\"")])
    }
}

/// A login this connection verified: the credentials header's keyed hash, the user, the users' generation, expiry.
struct VerifiedLogin {
    var fingerprint: Int
    var user: String
    var generation: Int
    var until: UInt64
}

extension ClientConnection {
    /// A verified login is trusted on its connection for a minute at most (the credential cache's TTL is longer).
    static let loginMemoNanos: UInt64 = 60_000_000_000

    /// A per-process randomly keyed hash (SipHash) of the credential headers as sent.
    static func fingerprint(_ authorization: ArraySlice<UInt8>?, _ apiKey: ArraySlice<UInt8>?) -> Int {
        var hasher = Hasher()
        hasher.combine(authorization)
        hasher.combine(apiKey)
        return hasher.finalize()
    }
}
