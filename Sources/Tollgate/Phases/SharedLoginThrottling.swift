import TollgateHTTP
import TollgateIO

/// The failed-login throttle with Redis: before a password is checked, Redis says whether the client prefix, or the
/// user from it, is throttled fleet-wide (the exchange waits without blocking); a failed login is counted there. A
/// credential this process has already verified from the same client prefix goes through without asking, as it
/// would locally. While Redis is
/// unavailable the `redis-fallback` policy decides: `local` applies this process's throttle (at limit/N), `open`
/// none, `closed` refuses with 503. The password check itself never involves Redis.
extension ClientConnection {
    /// Asks Redis whether the client prefix or the user from it is throttled, then checks the password, or
    /// refuses; may wait for Redis.
    func sharedLoginGate(_ ex: Exchange, _ credentials: Credentials, clientIP: String, shared: SharedLimits,
                         login: SharedLoginThrottle) -> PhaseResult {
        // Failures it did not cause never refuse a credential already known to be right.
        if let auth = worker.authenticator, auth.isVerified(credentials, clientIP: clientIP) {
            return checkPassword(ex, credentials, clientIP: clientIP, throttle: false)
        }
        if shared.isDown {
            shared.unavailable(.login, shared.downError, counted: false)
            return loginFallback(ex, credentials, clientIP: clientIP, shared: shared)
        }
        var immediate: SharedRateOutcome?
        var returned = false
        login.check(LoginThrottle.Key(clientIP: clientIP, user: credentials.user)) { [self] outcome in
            guard returned else {
                immediate = outcome
                return
            }
            sharedLoginDecided(ex, outcome, credentials, clientIP: clientIP, shared: shared)
        }
        returned = true
        if let immediate { return applyLoginGate(ex, immediate, credentials, clientIP: clientIP, shared: shared) }
        return .wait
    }

    /// Redis answered while the exchange waited; the client may have gone.
    private func sharedLoginDecided(_ ex: Exchange, _ outcome: SharedRateOutcome, _ credentials: Credentials,
                                    clientIP: String, shared: SharedLimits) {
        switch outcome {
        case .decided: shared.answered(.login)
        case .unavailable(let error): shared.unavailable(.login, error)
        }
        guard phase == .exchange, exchange === ex else { return }
        switch applyLoginGate(ex, outcome, credentials, clientIP: clientIP, shared: shared) {
        case .proceed: admitted(ex)
        case .wait: break
        case .reject(let error, let reason): respond(ex, error, reason: reason)
        }
        if phase != .closed { readAvailable() }
    }

    private func applyLoginGate(_ ex: Exchange, _ outcome: SharedRateOutcome, _ credentials: Credentials,
                                clientIP: String, shared: SharedLimits) -> PhaseResult {
        switch outcome {
        case .decided(.rejected(let seconds, _)):
            ex.authOutcome = "throttled"
            return .reject(ClientConnection.loginThrottled(seconds), .rejected)
        case .decided:
            return checkPassword(ex, credentials, clientIP: clientIP, throttle: false)
        case .unavailable:
            return loginFallback(ex, credentials, clientIP: clientIP, shared: shared)
        }
    }

    private func loginFallback(_ ex: Exchange, _ credentials: Credentials, clientIP: String,
                               shared: SharedLimits) -> PhaseResult {
        switch shared.policy {
        case .local:
            return checkPassword(ex, credentials, clientIP: clientIP, throttle: true)
        case .open:
            return checkPassword(ex, credentials, clientIP: clientIP, throttle: false)
        case .closed:
            ex.authOutcome = "unavailable"
            return .reject(ClientConnection.sharedLimitsUnavailable, .rejected)
        }
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
