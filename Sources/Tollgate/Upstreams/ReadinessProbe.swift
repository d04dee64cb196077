import TollgateIO

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
        worker.readiness.known(ok, detail: detail)
    }
}
