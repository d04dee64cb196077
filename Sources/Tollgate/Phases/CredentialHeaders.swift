import TollgateHTTP
import TollgateIO

/// The first authentication phase: reads credentials from Basic, Bearer or x-api-key (or an `ollama` key's
/// signature), refuses ambiguous or missing ones, and lets a login this connection verified recently through
/// without a check. Otherwise it leaves the credentials for the password check (`Authentication`). Public paths
/// skip it.
final class CredentialHeaders: ConnectionPhase {
    let auth: Authenticator
    let realm: String
    /// The API keys (nil without a key table).
    let keys: KeyRing?
    /// Where a password is still accepted (`password-logins`).
    let passwordLogins: PasswordLogins

    init?(config: ServerConfig, worker: Worker) {
        guard let auth = worker.authenticator else { return nil }
        self.auth = auth
        realm = config.realm
        keys = worker.keys
        passwordLogins = config.passwordLogins
    }

    var readsHead: Bool { true }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard !ex.isPublic else { return .next }
        var authorization: ArraySlice<UInt8>?
        var apiKey: ArraySlice<UInt8>?
        var repeated = false
        for field in head.headers {
            if field.kind == .authorization {
                repeated = repeated || authorization != nil
                authorization = c.input.bytes[field.value]
            }
            if field.kind == .xApiKey {
                repeated = repeated || apiKey != nil
                apiKey = c.input.bytes[field.value]
            }
        }
        // Ambiguous credentials are refused, before anything is checked or remembered: with two of a header, one
        // hop reads the first and another the last, i.e. two different users (RFC 9110 §5.3 allows repeating
        // only list-valued fields, which these are not). Authorization together with x-api-key is accepted only
        // when both carry the same credentials; when they differ, which one counts depends on who reads them.
        if repeated {
            ex.authResult = .ambiguous
            return .answer(ErrorResponse(status: 400, message: "more than one Authorization or x-api-key header"),
                           .rejected)
        }
        if let authorization, let apiKey, !CredentialHeaders.sameCredentials(authorization, apiKey) {
            ex.authResult = .ambiguous
            return .answer(ErrorResponse(status: 400, message: "Authorization and x-api-key carry different credentials"),
                           .rejected)
        }
        // The same credentials again on this keep-alive connection, from the same client (behind a trusted proxy,
        // the same forwarded address), verified recently and with the users unchanged:
        // no decoding, no HMAC, no lock. Only a per-process keyed hash of the header is kept, never the password.
        // Signed logins (the ollama CLI's key) are never remembered: each signature covers one request only.
        let fingerprint = CredentialHeaders.fingerprint(authorization, apiKey)
        if let memo = c.verifiedLogin, memo.fingerprint == fingerprint, memo.generation == auth.usersGeneration,
           memo.client == ex.client, c.worker.loop.now < memo.until {
            // A key is looked up again (no hashing): revoked or expired since, it stops here, not a minute later.
            if let id = memo.keyID {
                if let grant = keys?.recheck(id), grant.user == memo.user {
                    ex.user = memo.user
                    ex.keyID = id
                    ex.keyModels = grant.models
                    ex.authResult = .allowed
                    return .next
                }
                c.verifiedLogin = nil
            } else {
                ex.user = memo.user
                ex.authResult = .allowed
                return .next
            }
        }
        let credentials: Credentials
        switch CredentialExtractor.extract(authorization: authorization, apiKey: apiKey) {
        case .none:
            ex.authResult = .missing
            return .answer(Authentication.unauthorized("authentication required: send Basic credentials, or user:password as a Bearer token or x-api-key", realm: realm), .rejected)
        case .malformed(let why):
            ex.authResult = .malformed
            return .answer(Authentication.unauthorized("invalid credentials header: \(why)", realm: realm), .rejected)
        case .found(let found, let source):
            // MARK: password-logins (begin)
            guard passwordLogins.accepts(source) else {
                ex.attemptedUser = found.user
                ex.authResult = .passwordRefused
                let message = passwordLogins == .basic
                    ? "this server accepts a password only with Basic authentication: send an API key (tg_...) as the Bearer token or x-api-key"
                    : "this server accepts API keys only (tg_...), not passwords"
                return .answer(Authentication.unauthorized(message, realm: realm), .rejected)
            }
            // MARK: password-logins (end)
            credentials = found
        case .signed(let signed):
            // The ollama CLI's own key (CredentialHeaders+Signed.swift).
            return signedLogin(signed, ex, head: head, fingerprint: fingerprint, on: c)
        // MARK: API keys (begin)
        case .key(let token, let claimedUser, _):
            guard let keys else {
                ex.authResult = .malformed
                return .answer(Authentication.unauthorized("this server has no API keys (no key table)", realm: realm), .rejected)
            }
            ex.keyID = token.id
            // The throttle counts a key's failures under the user it claims, else under the id itself, whether or
            // not the id exists: counting a known id under its owner would make the throttle tell which ids exist
            // (a throttled owner answers 429 where an unknown id answers 401).
            let user = claimedUser ?? "tg_\(token.id)"
            ex.attemptedUser = claimedUser ?? keys.owner(of: token.id)
            ex.credentialFingerprint = fingerprint
            let clientIP = ex.client.map { SocketAddress(host: $0, port: 0).hostString } ?? c.peerString
            ex.login = PendingLogin(credentials: Credentials(user: user, password: []), clientIP: clientIP,
                                    key: (token, claimedUser))
            return .next
        // MARK: API keys (end)
        }
        ex.attemptedUser = credentials.user
        ex.credentialFingerprint = fingerprint
        let clientIP = ex.client.map { SocketAddress(host: $0, port: 0).hostString } ?? c.peerString
        ex.login = PendingLogin(credentials: credentials, clientIP: clientIP)
        return .next
    }

    /// Whether an `Authorization` value and an `x-api-key` value name the same user with the same password.
    static func sameCredentials(_ authorization: ArraySlice<UInt8>, _ apiKey: ArraySlice<UInt8>) -> Bool {
        if case .key(let a, let userA, _) = CredentialExtractor.extract(authorization: authorization, apiKey: nil),
           case .key(let b, let userB, _) = CredentialExtractor.extract(authorization: nil, apiKey: apiKey) {
            return userA == userB && Digest.constantTimeEquals(a.bytes, b.bytes)
        }
        guard case .found(let a, _) = CredentialExtractor.extract(authorization: authorization, apiKey: nil),
              case .found(let b, _) = CredentialExtractor.extract(authorization: nil, apiKey: apiKey) else { return false }
        return a.user == b.user && Digest.constantTimeEquals(a.password, b.password)
    }

    /// A per-process randomly keyed hash (SipHash) of the credential headers as sent.
    static func fingerprint(_ authorization: ArraySlice<UInt8>?, _ apiKey: ArraySlice<UInt8>?) -> Int {
        var hasher = Hasher()
        // Whole byte runs, not one combine per byte; presence and length first, so the two parts cannot run together.
        func add(_ part: ArraySlice<UInt8>?) {
            guard let part else {
                hasher.combine(false)
                return
            }
            hasher.combine(true)
            hasher.combine(part.count)
            hasher.combine(contentsOf: part)
        }
        add(authorization)
        add(apiKey)
        return hasher.finalize()
    }
}
