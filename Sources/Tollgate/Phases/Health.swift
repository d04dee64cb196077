import TollgateHTTP
import TollgateIO

/// Liveness and readiness answered by Tollgate itself, without authentication: `/healthz` never touches the
/// upstream; `/readyz` says whether the upstream accepts connections (checked at most once a second per worker).
extension ClientConnection {
    /// Answers a health path; false when the request is not for one.
    func answerHealth(_ ex: Exchange) -> Bool {
        let config = worker.config
        guard ex.method == .get || ex.method == .head else { return false }
        if let path = config.healthPath, ex.path == path {
            ex.authOutcome = "public"
            respondJSON(ex, status: 200, body: #"{"status":"ok"}"#)
            return true
        }
        if let path = config.readyPath, ex.path == path {
            ex.authOutcome = "public"
            worker.readiness { [self] ready, detail in
                guard phase == .exchange, exchange === ex else { return }
                if ready {
                    respondJSON(ex, status: 200, body: #"{"status":"ready"}"#)
                } else {
                    respondJSON(ex, status: 503, body: #"{"status":"unavailable","error":"# + ErrorResponse.jsonString(detail) + "}")
                }
            }
            return true
        }
        return false
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
