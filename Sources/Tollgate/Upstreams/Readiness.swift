import TollgateIO

/// Whether this worker's peers accept requests, for `/readyz`: the one readiness question, answered from the peers'
/// health where they keep it (a backend set: ready while one backend is healthy, which the health checker keeps
/// current), else from whether the single upstream accepts a connection (a pooled connection to it, or a
/// non-blocking connect, `ReadinessProbe`), remembered for a second so that a flood of checks costs one probe.
///
/// Loop thread of its worker.
final class Readiness {
    private unowned let worker: Worker
    private var until: UInt64 = 0
    private var ok = false
    private var detail = ""
    private var waiters: [(Bool, String) -> Void] = []
    private var probing = false

    init(worker: Worker) {
        self.worker = worker
    }

    /// Calls back with whether the peers accept requests and, when not, why; at once or when the probe ends.
    func check(_ callback: @escaping (Bool, String) -> Void) {
        if worker.loop.now < until {
            callback(ok, detail)
            return
        }
        if let healthy = worker.peers.healthy {
            callback(healthy, healthy ? "" : "no healthy backend")
            return
        }
        if worker.hasIdleUpstream(backend: 0) {
            known(true, detail: "")
            callback(true, "")
            return
        }
        waiters.append(callback)
        guard !probing else { return }
        probing = true
        let upstream = worker.config.upstream
        switch Socket.connect(to: upstream.address) {
        case .connected(let fd):
            Syscall.close(fd)
            known(true, detail: "")
        case .failed(let e):
            known(false, detail: Syscall.describe(e))
        case .inProgress(let fd):
            _ = ReadinessProbe(worker: worker, fd: fd)
        }
    }

    /// The probe's answer: remembered for a second and given to every waiting check. `detail` says why not, without
    /// the upstream's address: `/readyz` is public and the address is internal, so only the error log names it,
    /// once each time the upstream stops accepting connections.
    func known(_ ok: Bool, detail: String) {
        probing = false
        if !ok && (self.ok || until == 0) {
            Diagnostics.warn("readiness: upstream \(worker.config.upstream.hostHeader) does not accept connections: \(detail)")
        }
        self.ok = ok
        self.detail = ok ? "" : "upstream: \(detail)"
        until = worker.loop.now &+ 1_000_000_000
        let waiting = waiters
        waiters.removeAll()
        for w in waiting { w(ok, self.detail) }
    }
}
