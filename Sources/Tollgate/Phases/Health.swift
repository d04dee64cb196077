import TollgateHTTP

/// Liveness and readiness answered by Tollgate itself, without authentication: `/healthz` never touches the
/// upstream; `/readyz` says whether the upstream accepts connections (checked at most once a second per worker;
/// the exchange waits for the check).
final class Health: ConnectionPhase {
    let healthPath: String?
    let readyPath: String?

    init?(config: ServerConfig, worker: Worker) {
        if config.healthPath == nil && config.readyPath == nil { return nil }
        healthPath = config.healthPath
        readyPath = config.readyPath
    }

    func run(_ ex: Exchange, head: RequestHead, on c: ClientConnection) -> PhaseOutcome {
        guard ex.method == .get || ex.method == .head else { return .next }
        if let path = healthPath, ex.path == path {
            ex.authResult = .public
            return .reply(.json(200, #"{"status":"ok"}"#))
        }
        if let path = readyPath, ex.path == path {
            ex.authResult = .public
            c.worker.readiness.check { ready, detail in
                ex.phases.resume(ex, on: c) {
                    if ready { return .reply(.json(200, #"{"status":"ready"}"#)) }
                    // `detail` never names the upstream's address: this answer is public.
                    return .reply(.json(503, #"{"status":"unavailable","error":"# + ErrorResponse.jsonString(detail) + "}"))
                }
            }
            return .wait
        }
        return .next
    }
}
