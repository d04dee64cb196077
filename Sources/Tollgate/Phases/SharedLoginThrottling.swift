import TollgateHTTP
import TollgateIO

/// The failed-login throttle with Redis (the `LoginThrottling` phase's decision-maker): before a password is
/// checked, Redis says whether the client prefix, or the user from it, is throttled fleet-wide (the exchange waits
/// without blocking); a failed login is counted there. A credential this process has already verified from the same
/// client prefix goes through without asking, as it would locally. While Redis is unavailable the `redis-fallback`
/// policy decides: `local` applies this process's throttle (at limit/N), `open` none, `closed` refuses with 503.
/// The decision is whether the password check applies the local throttle (`PendingLogin.throttle`); the check
/// itself (`Authentication`) never involves Redis.
extension ClientConnection {
    /// Asks Redis whether the client prefix or the user from it is throttled: lets the password check go on
    /// (deciding whether it applies the local throttle), or refuses; may wait for Redis.
    func sharedLoginGate(_ ex: Exchange, _ credentials: Credentials, clientIP: String, shared: SharedLimits,
                         login: SharedLoginThrottle) -> PhaseOutcome {
        // Failures it did not cause never refuse a credential already known to be right.
        if let auth = worker.authenticator, auth.isVerified(credentials, clientIP: clientIP) {
            return checkPassword(ex, throttle: false)
        }
        if shared.isDown {
            shared.unavailable(.login, shared.downError, counted: false)
            return loginFallback(ex, shared: shared)
        }
        var immediate: SharedRateOutcome?
        var returned = false
        login.check(LoginThrottle.Key(clientIP: clientIP, user: credentials.user)) { [self] outcome in
            guard returned else {
                immediate = outcome
                return
            }
            sharedLoginDecided(ex, outcome, shared: shared)
        }
        returned = true
        if let immediate { return applyLoginGate(ex, immediate, shared: shared) }
        return .wait
    }

    /// Redis answered while the exchange waited; the client may have gone.
    private func sharedLoginDecided(_ ex: Exchange, _ outcome: SharedRateOutcome, shared: SharedLimits) {
        switch outcome {
        case .decided: shared.answered(.login)
        case .unavailable(let error): shared.unavailable(.login, error)
        }
        ex.phases.resume(ex, on: self) {
            applyLoginGate(ex, outcome, shared: shared)
        }
    }

    private func applyLoginGate(_ ex: Exchange, _ outcome: SharedRateOutcome, shared: SharedLimits) -> PhaseOutcome {
        switch outcome {
        case .decided(.rejected(let seconds, _)):
            ex.authOutcome = "throttled"
            return .answer(Authentication.throttled(seconds), .rejected)
        case .decided:
            return checkPassword(ex, throttle: false)
        case .unavailable:
            return loginFallback(ex, shared: shared)
        }
    }

    private func loginFallback(_ ex: Exchange, shared: SharedLimits) -> PhaseOutcome {
        switch shared.policy {
        case .local:
            return checkPassword(ex, throttle: true)
        case .open:
            return checkPassword(ex, throttle: false)
        case .closed:
            ex.authOutcome = "unavailable"
            return .answer(ClientConnection.sharedLimitsUnavailable, .rejected)
        }
    }

    /// The password is checked next (`Authentication`), with the local failed-login throttle or without it.
    private func checkPassword(_ ex: Exchange, throttle: Bool) -> PhaseOutcome {
        ex.login?.throttle = throttle
        return .next
    }

    /// Counts a failed login fleet-wide (the local throttle has counted it too); logs the failure that throttles.
    func recordSharedLoginFailure(_ key: LoginThrottle.Key, shared: SharedLimits, throttle: SharedLoginThrottle) {
        guard !shared.isDown else { return }
        throttle.recordFailure(key) { result in
            switch result {
            case .success(let nowThrottled):
                shared.answered(.login)
                if nowThrottled {
                    Diagnostics.warn("client \(key.prefixText) (user \(key.user.debugDescription)) throttled "
                        + "fleet-wide after repeated failed logins")
                }
            case .failure(let error):
                shared.unavailable(.login, error)
            }
        }
    }
}
