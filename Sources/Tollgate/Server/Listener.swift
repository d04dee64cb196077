import Glibc
import TollgateIO

/// One listening socket on one event loop (each loop has its own, sharing the port with SO_REUSEPORT, so the
/// kernel spreads connections across loops).
///
/// Loop thread only; closes its socket in `close`.
final class Listener: EventHandler {
    let worker: Worker
    let fd: Int32
    let kind: ClientConnection.Kind
    private var closed = false
    private(set) var deadline: UInt64 = 0

    init(worker: Worker, fd: Int32, kind: ClientConnection.Kind) {
        self.worker = worker
        self.fd = fd
        self.kind = kind
        worker.loop.register(fd, interest: .read, handler: self)
    }

    func ready(_ events: ReadyEvents) {
        // One connection per readiness, as nginx without multi_accept: the socket is level-triggered, so the next
        // wait reports it again while more are queued, together with the loop's other events (a storm cannot
        // starve the connections already open), and the common case of one pending connection costs one accept4,
        // not a second one that only says EAGAIN.
        guard !closed else { return }
        switch Socket.accept(fd) {
        case .connection(let cfd, let peer):
            accepted(cfd, peer)
        case .wouldBlock, .failed:
            return
        case .exhausted:
            // Out of descriptors: stop accepting for a moment instead of spinning on a level-triggered event;
            // the sweep re-enables us (accept keeps working once the pressure passes).
            worker.loop.setInterest(fd, .none)
            deadline = worker.loop.now &+ 100_000_000
        }
    }

    private func accepted(_ cfd: Int32, _ peer: SocketAddress) {
        // The connection caps (see `ConnectionLimiter` for why over a cap means closing at once). The metrics
        // listener is for local monitoring and never capped; a load balancer's connections (PROXY protocol, or a
        // trusted proxy's) count in the total at once and per client once the client is known, if ever.
        var admission: ConnectionLimiter.Verdict?
        if kind != .metrics, let limiter = worker.connectionLimiter {
            // The two fields only: a copy of the whole configuration retains each of its buffers.
            let perClient = !worker.config.proxyProtocol
                && !worker.config.trustedProxies.contains { $0.contains(peer.host) }
            let verdict = limiter.admit(perClient ? peer.host : nil)
            switch verdict {
            case .admitted:
                admission = verdict
            case .overTotal, .overClient:
                worker.count { $0.connectionsRefused[verdict == .overTotal ? 0 : 1] += 1 }
                Syscall.close(cfd)
                return
            }
        }
        let conn: ClientConnection
        switch kind {
        case .tls:
            guard let tls = worker.tls, let session = tls.makeSession(fd: cfd) else {
                if case .admitted(let key) = admission { worker.connectionLimiter?.release(key) }
                Syscall.close(cfd)
                return
            }
            conn = ClientConnection(worker: worker, transport: .tls(cfd, session), peer: peer, kind: .tls)
        case .plain, .redirect, .metrics:
            conn = ClientConnection(worker: worker, transport: .plain(cfd), peer: peer, kind: kind)
        }
        conn.limitAdmission = admission
        if kind != .tls && worker.draining { conn.drain() }
    }

    func deadlineExpired(now: UInt64) {
        deadline = 0
        if !closed { worker.loop.setInterest(fd, .read) }
    }

    /// Stops accepting and closes the socket.
    func close() {
        guard !closed else { return }
        closed = true
        deadline = 0
        worker.loop.deregister(fd)
        Syscall.close(fd)
    }
}
