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
        var repeated = false
        for field in head.headers {
            if field.kind == .authorization {
                repeated = repeated || authorization != nil
                authorization = input[field.value]
            }
            if field.kind == .xApiKey {
                repeated = repeated || apiKey != nil
                apiKey = input[field.value]
            }
        }
        // Ambiguous credentials are refused, before anything is checked or remembered: with two of a header, one
        // hop reads the first and another the last, i.e. two different users (RFC 9110 §5.3 allows repeating
        // only list-valued fields, which these are not). Authorization together with x-api-key is accepted only
        // when both carry the same credentials; when they differ, which one counts depends on who reads them.
        if repeated {
            ex.authOutcome = "ambiguous"
            return .reject(ErrorResponse(status: 400, message: "more than one Authorization or x-api-key header"),
                           .rejected)
        }
        if let authorization, let apiKey, !ClientConnection.sameCredentials(authorization, apiKey) {
            ex.authOutcome = "ambiguous"
            return .reject(ErrorResponse(status: 400, message: "Authorization and x-api-key carry different credentials"),
                           .rejected)
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
        let login = LoginThrottle.Key(clientIP: clientIP, user: credentials.user)
        let check = auth.check(credentials, clientIP: clientIP, throttle: throttle) { outcome in
            loop.execute { box.value.0.authenticated(box.value.1, outcome, login: login) }
        }
        switch check {
        case .done(let outcome): return result(ex, outcome, login: login)
        case .pending: return .wait
        }
    }

    /// A password check finished on the pool; back on the loop. The client may have gone meanwhile.
    func authenticated(_ ex: Exchange, _ outcome: AuthOutcome, login: LoginThrottle.Key) {
        guard phase == .exchange, exchange === ex else { return }
        switch result(ex, outcome, login: login) {
        case .proceed: admitted(ex)
        case .wait: break
        case .reject(let error, let reason): respond(ex, error, reason: reason)
        }
        if phase != .closed { readAvailable() }
    }

    private func result(_ ex: Exchange, _ outcome: AuthOutcome, login: LoginThrottle.Key) -> PhaseResult {
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
            if let shared = worker.shared, let sharedThrottle = shared.login {
                recordSharedLoginFailure(login, shared: shared, throttle: sharedThrottle)
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

    /// The 429 of a throttled client prefix, or user from it.
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

    /// Whether an `Authorization` value and an `x-api-key` value name the same user with the same password.
    static func sameCredentials(_ authorization: ArraySlice<UInt8>, _ apiKey: ArraySlice<UInt8>) -> Bool {
        guard case .found(let a, _) = CredentialExtractor.extract(authorization: authorization, apiKey: nil),
              case .found(let b, _) = CredentialExtractor.extract(authorization: nil, apiKey: apiKey) else { return false }
        return a.user == b.user && Digest.constantTimeEquals(a.password, b.password)
    }

    /// A per-process randomly keyed hash (SipHash) of the credential headers as sent.
    static func fingerprint(_ authorization: ArraySlice<UInt8>?, _ apiKey: ArraySlice<UInt8>?) -> Int {
        var hasher = Hasher()
        hasher.combine(authorization)
        hasher.combine(apiKey)
        return hasher.finalize()
    }
}
