import TollgateHTTP
import TollgateIO

/// Liveness and readiness answered by Tollgate itself, without authentication: `/healthz` never touches the
/// upstream; `/readyz` says whether the upstream accepts connections (checked at most once a second per worker;
/// the exchange waits for the check).
struct Health: ConnectionPhase {
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
            ex.authOutcome = "public"
            return .reply(.json(200, #"{"status":"ok"}"#))
        }
        if let path = readyPath, ex.path == path {
            ex.authOutcome = "public"
            c.worker.readiness { ready, detail in
                ex.phases.resume(ex, on: c) {
                    if ready { return .reply(.json(200, #"{"status":"ready"}"#)) }
                    return .reply(.json(503, #"{"status":"unavailable","error":"# + ErrorResponse.jsonString(detail) + "}"))
                }
            }
            return .wait
        }
        return .next
    }
}

/// One readiness check in flight: a non-blocking connect to the upstream.
final class ReadinessProbe: EventHandler {
    let worker: Worker
    let fd: Int32
    private(set) var deadline: UInt64
    private var done = false

    init(worker: Worker, fd: Int32) {
        self.worker = worker
        self.fd = fd
        deadline = worker.loop.now &+ 1_000_000_000
        worker.loop.register(fd, interest: .write, handler: self)
    }

    func ready(_ events: ReadyEvents) {
        let err = Syscall.socketError(fd)
        finish(err == 0 && !events.contains(.error), err == 0 ? "connection failed" : Syscall.describe(err))
    }

    func deadlineExpired(now: UInt64) {
        finish(false, "no connection within 1 s")
    }

    private func finish(_ ok: Bool, _ detail: String) {
        guard !done else { return }
        done = true
        deadline = 0
        worker.loop.deregister(fd)
        Syscall.close(fd)
        worker.readinessKnown(ok, detail: "\(worker.config.upstream.hostHeader): \(detail)")
    }
}
