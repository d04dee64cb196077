import Glibc
import TollgateHTTP
import TollgateIO

/// One keep-alive HTTP/1.1 connection to the upstream. It belongs to a worker's pool while idle and to one
/// `ClientConnection` while an exchange uses it; the client connection drives the protocol through this type's
/// operations (queue request bytes, read, consume, pause), this type the socket and its buffers.
///
/// Loop thread only. Closed exactly once through `close`.
final class UpstreamConnection: EventHandler {
    enum State { case connecting, active, idle, closed }

    let worker: Worker
    let fd: Int32
    /// The backend it is connected to (index into `ServerConfig.upstreams`; 0 with a single upstream). Pools are
    /// per backend: a connection to one backend never carries a request meant for another.
    let backend: Int
    private(set) var state: State
    /// The exchange's owner while active.
    private(set) var client: ClientConnection?
    /// Bytes waiting to go upstream (request head and body).
    private var out: [UInt8] = []
    private var outStart = 0
    /// Whether `out`'s buffer was lent (`lendUnsentRequest`) and may be shared: once written it is let go, not
    /// emptied in place, which would copy it into a new buffer while the borrower holds the old one.
    private var outLent = false
    /// Bytes read from upstream not yet relayed: `input.bytes[unread]`, given up with `consume`.
    private(set) var input = ReadWindow()
    /// Whether the connection has been in the pool (a failure before any response byte may be a stale connection).
    private(set) var reused = false
    /// Reading paused because the client is slow.
    private var paused = false
    var deadline: UInt64 = 0
    /// How many bytes the last `readOnce` asked for (a shorter answer means the socket is drained).
    private var lastReadRequested = 0
    /// The last `readOnce` got fewer bytes than it asked for: the socket is empty, epoll says when more comes.
    private(set) var drained = false

    init(worker: Worker, fd: Int32, connected: Bool, backend: Int = 0) {
        self.worker = worker
        self.fd = fd
        self.backend = backend
        self.state = connected ? .active : .connecting
        let interest: Interest = connected ? .read : .write
        worker.loop.register(fd, interest: interest, handler: self)
        if !connected { deadline = worker.loop.now &+ worker.seconds(worker.config.timeouts.upstreamConnect) }
    }

    /// Starts a connection to backend `backend` (the configured upstream when there is one).
    static func open(worker: Worker, backend: Int = 0) -> Result<UpstreamConnection, CloseReason> {
        switch Socket.connect(to: worker.config.upstreams[backend].address.address) {
        case .connected(let fd): return .success(UpstreamConnection(worker: worker, fd: fd, connected: true, backend: backend))
        case .inProgress(let fd): return .success(UpstreamConnection(worker: worker, fd: fd, connected: false, backend: backend))
        case .failed: return .failure(.upstreamRefused)
        }
    }

    var isUsable: Bool { state == .idle }
    var isConnecting: Bool { state == .connecting }
    private var hasPendingOutput: Bool { outStart < out.count }
    var bufferedInput: Int { input.count }
    /// Where the bytes read and not yet consumed lie in `input.bytes`.
    var unread: Range<Int> { input.unread }
    /// Request bytes queued and not yet written.
    var backlog: Int { out.count - outStart }

    // MARK: operations

    /// Queues request bytes.
    func enqueue(_ bytes: [UInt8]) {
        if out.isEmpty {
            out = bytes
        } else {
            out.append(contentsOf: bytes)
        }
    }

    /// Queues what `fill` appends to the request bytes (body bytes copied or re-framed from the client's buffer).
    func enqueue<R>(_ fill: (inout [UInt8]) -> R) -> R {
        fill(&out)
    }

    /// Queues a request head written for another Host, with `host` instead; `head` is kept (the exchange keeps its
    /// request for another backend).
    func enqueueHead(_ head: [UInt8], host: [UInt8]) {
        RequestRewriter.appendReplacingHost(head, host: host, to: &out)
    }

    /// Queues a request head written with Host `written` and takes its buffer: as is (no copy, when the output is
    /// empty) when `host` is that Host, else with `host` instead. `head` is left empty.
    func enqueueHead(taking head: inout [UInt8], host: [UInt8], written: [UInt8]) {
        if host != written {
            RequestRewriter.appendReplacingHost(head, host: host, to: &out)
        } else if out.isEmpty {
            swap(&out, &head)
        } else {
            out.append(contentsOf: head)
        }
        worker.recycleOutput(&head)
    }

    /// Whether any byte of the current exchange's request was written (the backend may have acted on it).
    private(set) var wroteAny = false

    /// The whole queued request while none of it has been written, else nil. The bytes are shared, not copied;
    /// the borrower hands the buffer back (`Worker.recycleOutput`) when it is done with it.
    func lendUnsentRequest() -> [UInt8]? {
        guard outStart == 0 else { return nil }
        outLent = true
        return out
    }

    /// Empties `out`: in place when the buffer is this connection's alone, else by letting it go.
    private func dropOutput() {
        if outLent {
            out = []
            outLent = false
        } else {
            out.removeAll(keepingCapacity: true)
        }
    }

    /// The exchange is done with the connection: back to its backend's pool when the response allows keep-alive
    /// and nothing is left over either way, else closed.
    func release(keepAlive: Bool) {
        if keepAlive && !hasPendingOutput && bufferedInput == 0 {
            worker.putIdleUpstream(self)
        } else {
            close()
        }
    }

    /// Gives up `n` bytes of `input` (relayed or parsed).
    func consume(_ n: Int) {
        input.consume(n)
    }

    /// Stops reading until `resume`: the client's backlog is full.
    func pause() {
        paused = true
        updateInterest()
    }

    /// Reads again after `pause` (the client drained its backlog).
    func resume() {
        guard paused else { return }
        paused = false
        updateInterest()
    }

    /// Attaches to a client's exchange.
    func attach(_ client: ClientConnection) {
        self.client = client
        if state == .idle { state = .active }
        paused = false
        armIdle()
        // Interest is set by the flush that follows (read, plus write only if the request did not fit the socket):
        // one epoll_ctl at most instead of two per request.
        if state == .connecting { updateInterest() }
    }

    func becomeIdle() {
        client = nil
        state = .idle
        reused = true
        wroteAny = false
        dropOutput()
        worker.recycleOutput(&out)
        outStart = 0
        worker.recycleInput(&input)
        deadline = worker.loop.now &+ worker.seconds(worker.config.timeouts.upstreamPoolIdle)
        worker.loop.setInterest(fd, .read)
    }

    /// Re-arms the between-bytes timeout.
    private func armIdle() {
        deadline = worker.loop.now &+ worker.seconds(worker.config.timeouts.upstreamIdle)
    }

    private func updateInterest() {
        guard state == .active || state == .connecting else { return }
        var interest: Interest = []
        if state == .connecting {
            interest = .write
        } else {
            if !paused { interest.insert(.read) }
            if hasPendingOutput { interest.insert(.write) }
        }
        worker.loop.setInterest(fd, interest)
    }

    /// Writes what is pending. Returns false if the connection failed.
    func flush() -> Bool {
        guard state == .active else { return true }
        while outStart < out.count {
            switch Syscall.write(fd, out, at: outStart, count: out.count - outStart) {
            case .bytes(let n):
                outStart += n
                wroteAny = true
                client?.exchange?.forwarded = true
                armIdle()   // a long upload is progress too
            case .wouldBlock:
                updateInterest()
                return true
            case .eof, .failed:
                return false
            }
        }
        dropOutput()
        outStart = 0
        updateInterest()
        return true
    }

    /// Reads once into `input` and re-arms the between-bytes timeout when bytes came; compacts or grows the buffer
    /// first.
    func readOnce() -> IOResult {
        input.rewindIfDrained()
        if !input.hasBuffer {
            input.adopt(worker.takeInput())
        } else if input.room < 4096 {
            input.compact()
            if input.room < 4096 { input.grow() }
        }
        lastReadRequested = input.room
        let fd = self.fd
        let r = input.read { Syscall.read(fd, into: &$0, at: $1, count: $2) }
        if case .bytes(let n) = r {
            drained = n < lastReadRequested
            armIdle()
        }
        return r
    }

    // MARK: EventHandler

    func ready(_ events: ReadyEvents) {
        switch state {
        case .closed:
            return
        case .idle:
            // An idle pooled connection that becomes readable was closed (or spoke out of turn): drop it.
            worker.removeIdleUpstream(self)
            close()
        case .connecting:
            let err = Syscall.socketError(fd)
            if err != 0 || events.contains(.error) {
                client?.upstreamFailed(self, reason: .upstreamRefused, detail: Syscall.describe(err == 0 ? ECONNREFUSED : err))
                return
            }
            state = .active
            armIdle()
            client?.upstreamConnected(self)
        case .active:
            client?.upstreamReady(self, events)
        }
    }

    func deadlineExpired(now: UInt64) {
        switch state {
        case .idle:
            worker.removeIdleUpstream(self)
            close()
        case .connecting:
            client?.upstreamFailed(self, reason: .upstreamTimeout, detail: "no connection within \(seconds(worker.config.timeouts.upstreamConnect))")
        case .active:
            client?.upstreamTimedOut(self)
        case .closed:
            break
        }
    }

    /// Closes the socket; an active generation upstream notices and stops (Ollama cancels on close).
    func close() {
        guard state != .closed else { return }
        state = .closed
        client = nil
        deadline = 0
        worker.loop.deregister(fd)
        Syscall.close(fd)
        worker.recycleInput(&input)
        dropOutput()
        worker.recycleOutput(&out)
    }
}
