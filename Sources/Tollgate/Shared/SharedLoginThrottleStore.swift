/// The failed-login throttle across the fleet: before a password is checked, Redis says whether the client prefix,
/// or the user from it, is throttled anywhere (a throttle cached in the process answers at once, Redis later); a
/// failed login is counted there too. A credential this process has already verified from the same client prefix
/// goes through without asking, as it would locally. Every name is counted in its NFC form (`fleetName`), listed or
/// not, however the client spelled it. While Redis is unavailable the `redis-fallback` policy decides: `local`
/// applies this process's throttle (at limit/N), `open` none, `closed` refuses with 503. The password check itself
/// never involves Redis. Loop thread only.
struct SharedLoginThrottleStore: LoginThrottleStore {
    /// Knows the credentials this process has verified, and holds this process's throttle.
    let auth: Authenticator
    /// This worker's side of the shared limits (connection, fallback state).
    let limits: SharedLimits
    /// The fleet-wide throttle.
    let throttle: SharedLoginThrottle

    func gate(_ credentials: Credentials, key: APIKeyToken?, clientIP: String, later: Resumption<LoginVerdict>) -> NowOrLater<LoginVerdict> {
        // Failures it did not cause never refuse a credential already known to be right.
        // A key login is known by the key's own hash (as `checkKey` lets it through locally): its stand-in
        // credentials (the user, no password) would never match, so a NAT guessing the user's password would
        // lock out every key of that user fleet-wide.
        if let key {
            if auth.isKeyVerified(key, clientIP: clientIP) { return .now(.check(throttle: false)) }
        } else if auth.isVerified(credentials, clientIP: clientIP) {
            return .now(.check(throttle: false))
        }
        if limits.isDown {
            limits.unavailable(.login, limits.downError, counted: false)
            return .now(fallback)
        }
        let limits = self.limits
        let key = LoginThrottle.Key(clientIP: clientIP, user: Self.fleetName(credentials.user))
        return NowOrLater<SharedRateOutcome>.asking({ throttle.check(key, completion: $0) }, later: { outcome in
            switch outcome {
            case .decided: limits.answered(.login)
            case .unavailable(let error): limits.unavailable(.login, error)
            }
            later.resume(verdict(outcome))
        }).map(verdict)
    }

    func recordFailure(_ failed: LoginThrottle.Key) {
        guard !limits.isDown else { return }
        var key = failed
        key.user = Self.fleetName(failed.user)
        let counted = key
        let limits = self.limits
        throttle.recordFailure(counted) { result in
            switch result {
            case .success(let nowThrottled):
                limits.answered(.login)
                if nowThrottled {
                    Diagnostics.warn("client \(counted.prefixText) (user \(counted.user.debugDescription)) throttled "
                        + "fleet-wide after repeated failed logins")
                }
            case .failure(let error):
                limits.unavailable(.login, error)
            }
        }
    }

    /// `user` as the fleet's throttle counts it: its NFC form. Swift compares names by canonical equivalence (so this
    /// process's throttle and the users file find "jose\u{301}" under "jos\u{E9}"), Redis compares bytes: every
    /// spelling of a name must count under one key there. The same for every name, listed or not: a listed name
    /// mapped to the users file's spelling while an unlisted one kept its bytes would let a client tell them apart
    /// (failures with one spelling throttle the other only when the name is listed).
    static func fleetName(_ user: String) -> String {
        String(decoding: user._nfcCodeUnits, as: UTF8.self)
    }

    private func verdict(_ outcome: SharedRateOutcome) -> LoginVerdict {
        switch outcome {
        case .decided(.rejected(let seconds, _)): return .throttled(retryAfterSeconds: seconds)
        case .decided: return .check(throttle: false)
        case .unavailable: return fallback
        }
    }

    /// Redis cannot decide: the password check applies this process's throttle (`local`) or none (`open`), or the
    /// login is refused (`closed`).
    private var fallback: LoginVerdict {
        switch limits.policy {
        case .local: return .check(throttle: true)
        case .open: return .check(throttle: false)
        case .closed: return .unavailable
        }
    }
}
