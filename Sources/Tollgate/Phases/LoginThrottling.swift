import TollgateHTTP

/// The failed-login throttle before a password check, as the worker's `LoginThrottleStore` decides it: this
/// process's throttle applies inside the password check itself (atomically with the credential cache), so its
/// store always lets the check go on; the fleet's refuses a client prefix (or the user from it) throttled anywhere,
/// and may make the exchange wait for that answer.
final class LoginThrottling: ConnectionPhase {
    /// The worker's: this process's throttle, or the fleet's.
    let store: any LoginThrottleStore

    init?(config: ServerConfig, worker: Worker) {
        guard worker.authenticator != nil, let store = worker.loginThrottle else { return nil }
        self.store = store
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        if ex.login == nil { return .next }
        guard let login = ex.login else { return .next }
        let later = Resumption(ex: ex, host: c, read: LoginThrottling.read)
        return later.outcome(store.gate(login.credentials, key: login.key?.token, clientIP: login.clientIP, later: later))
    }

    /// The exchange's outcome for `verdict`: the password is checked next (`Authentication`), with this process's
    /// throttle or without it, or the login is refused.
    static func read(_ ex: Exchange, _ c: ClientConnection, _ verdict: LoginVerdict) -> PhaseOutcome {
        switch verdict {
        case .check(let throttle):
            ex.login?.throttle = throttle
            return .next
        case .throttled(let seconds):
            ex.authResult = .throttled
            return .answer(Authentication.throttled(seconds), .rejected)
        case .unavailable:
            ex.authResult = .unavailable
            return .answer(ErrorResponse.sharedLimitsUnavailable, .rejected)
        }
    }
}
