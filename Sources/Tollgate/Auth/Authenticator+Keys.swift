import TollgateIO

extension Authenticator {
    /// What a key login came to.
    public enum KeyLogin: Sendable, Equatable {
        /// In force, for a user of the users file.
        case allowed(KeyGrant)
        /// Refused: 401 with `message` (which says revoked or expired only to whoever sent the right secret).
        case denied(message: String)
        /// Too many recent failures from this client prefix, or for this user from it: 429 after so many seconds.
        case throttled(retryAfterSeconds: Int)
    }

    /// Whether `token` was verified right from the prefix of `clientIP` recently (the throttle's memory of
    /// successes, as `checkKey` consults it): the fleet's throttle lets such a key through as this process's does.
    public func isKeyVerified(_ token: APIKeyToken, clientIP: String) -> Bool {
        let now = clock()
        let prefix = LoginThrottle.Key(clientIP: clientIP, user: "").prefix
        let credential = token.hash
        return state.withLock { $0.throttle.wasVerified(prefix, credential: credential, now: now) }
    }

    /// Checks an API key for a request from `clientIP`, on the spot (a snapshot lookup, one SHA-256, one
    /// constant-time compare: cheap enough for the loop). A key is a login like a password: a wrong or unknown one
    /// counts as a failed login for the client prefix and `throttleUser` (the user claimed, else `tg_<id>`), a
    /// throttled client is refused before the check unless this very key was verified from its prefix, and the
    /// key's user must be in the users file now (removed or disabled there, the key stops working).
    /// `claimedUser` (the user part of `user:key`) must be the key's user. `throttle` false: the fleet's throttle
    /// decided (as for `check`).
    public func checkKey(
        _ token: APIKeyToken, claimedUser: String?, throttleUser: String, clientIP: String, throttle: Bool = true,
        ring: KeyRing
    ) -> KeyLogin {
        let now = clock()
        let credential = token.hash
        let login = LoginThrottle.Key(clientIP: clientIP, user: throttleUser)
        if throttle, let seconds = state.withLock({ s -> Int? in
            guard let refusal = s.throttle.retryAfter(login, now: now) else { return nil }
            if s.throttle.wasVerified(login.prefix, credential: credential, now: now) { return nil }
            s.stats.throttled += 1
            return refusal
        }) {
            return .throttled(retryAfterSeconds: seconds)
        }
        let outcome: KeyLogin
        switch ring.verify(token) {
        case .valid(let grant):
            if let claimedUser, claimedUser != grant.user {
                outcome = .denied(message: "invalid API key")
            } else if let entry = users.entries[grant.user] {
                // Under the users file's spelling, as a password login is: `keys create` found the user by Swift's
                // `==` and stored the name as typed, while the ledger and Redis compare bytes.
                var listed = grant
                listed.user = entry.name
                outcome = .allowed(listed)
            } else {
                outcome = .denied(message: "the API key's user can no longer log in")
            }
        case .unknown, .wrongSecret:
            outcome = .denied(message: "invalid API key")
        case .revoked:
            outcome = .denied(message: "this API key has been revoked")
        case .expired:
            outcome = .denied(message: "this API key has expired")
        }
        var newlyThrottled: (String, Int)?
        state.withLock { s in
            if case .allowed = outcome {
                s.stats.allowed += 1
                s.throttle.recordSuccess(login.prefix, credential: credential, now: now)
            } else {
                s.stats.denied += 1
                if let what = s.throttle.recordFailure(login, now: now) {
                    let subject = what == .prefix ? "\(login.prefixText), every user"
                        : "\(login.prefixText), user \(login.user.debugDescription)"
                    newlyThrottled = (subject, s.throttle.retryAfter(login, now: now) ?? 1)
                }
            }
        }
        if let (subject, seconds) = newlyThrottled { onThrottle?(subject, seconds) }
        return outcome
    }
}
