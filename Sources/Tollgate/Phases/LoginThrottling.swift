import TollgateHTTP

/// The fleet-wide failed-login throttle, between reading credentials and checking their password: with Redis, the
/// client prefix (or the user from it) throttled anywhere in the fleet is refused here, and the password check skips
/// the local throttle (`SharedLoginThrottling.swift`: the exchange may wait for Redis). Without Redis the phase is off
/// and the local throttle applies inside the password check, atomically with the credential cache.
struct LoginThrottling: ConnectionPhase {
    let shared: SharedLimits
    let throttle: SharedLoginThrottle

    init?(config: ServerConfig, worker: Worker) {
        guard worker.authenticator != nil, let shared = worker.shared, let throttle = shared.login else { return nil }
        self.shared = shared
        self.throttle = throttle
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard let login = ex.login else { return .next }
        return c.sharedLoginGate(ex, login.credentials, clientIP: login.clientIP, shared: shared, login: throttle)
    }
}
