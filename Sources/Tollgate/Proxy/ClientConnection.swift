import Glibc
import TollgateHTTP
import TollgateIO

/// One client connection: TLS handshake, request heads, keep-alive and pipelining, writes and closing. Its phase,
/// timers and how it ends are decided by `life` (`ConnectionLifecycle`, no I/O); this class does the I/O.
/// The exchange logic (request body upstream, response back) lives in the `+Request` and `+Response` extensions,
/// how exchanges and the connection end in `+Ending`.
///
/// Loop thread only. Registered with the loop from accept to `close`, which releases everything exactly once.
final class ClientConnection: EventHandler {
    /// What the listener that accepted this connection does.
    enum Kind { case tls, plain, redirect, metrics }

    let worker: Worker
    let transport: Transport
    let kind: Kind
    private(set) var peerText: [UInt8]
    /// The upstream head's fixed parts for the peer's requests (`RequestRewriter.Parts`), made at its first request.
    var headParts: RequestRewriter.Parts?
    /// The peer's address as text, made from `peerText` when asked (log lines, per-user keys with authentication off).
    var peerString: String { String(decoding: peerText, as: UTF8.self) }
    private(set) var peerHost: SocketAddress.Host
    /// The last login verified on this connection (see `CredentialHeaders`, `Authentication`).
    var verifiedLogin: VerifiedLogin?
    /// Unique in the process: a signed request repeated on its own connection is not a replay (`ReplayCache`).
    private(set) lazy var serial = worker.nextConnectionSerial()
    /// The client was named by a PROXY protocol header: the TCP peer is a load balancer, so this connection's
    /// identity is not the client's (a repeated signature on it is a replay, see `ReplayCache`).
    private(set) var clientFromProxyHeader = false
    /// PROXY protocol header bytes taken so far.
    var proxyHeader: [UInt8] = []
    /// Phase, timers, keep-alive, linger and close: every decision about this connection's life.
    var life: ConnectionLifecycle
    var exchange: Exchange?

    /// The client's bytes read and not yet taken by a head or a body.
    var input = ReadWindow()
    var out: [UInt8] = []
    var outStart = 0
    private var handshakeWantsWrite = false
    /// The output bound: when this client is read and its pipelined requests start.
    private var flow: ClientFlow
    /// This connection's place in the connection caps (see `ConnectionLimiter`); nil when not counted.
    var limitAdmission: ConnectionLimiter.Verdict?

    /// Requests started in this turn, and whether the rest of the pipeline was put off to the next iteration.
    var turnStarts = 0
    var turnYielded = false

    /// Where the last head scan stopped, so a head trickled in byte by byte is not rescanned for every byte.
    var scanned = 0

    init(worker: Worker, transport: Transport, peer: SocketAddress, kind: Kind) {
        self.worker = worker
        self.transport = transport
        self.kind = kind
        self.peerHost = peer.host
        self.peerText = peer.hostBytes
        self.flow = ClientFlow(outputBound: worker.config.backpressureBytes)
        let expectsProxyHeader = worker.config.proxyProtocol && (kind == .tls || kind == .plain)
        self.life = ConnectionLifecycle(proxyHeader: expectsProxyHeader, tls: kind == .tls,
                                        timeouts: worker.config.timeouts.connection, now: worker.loop.now)
        worker.clientConnections += 1
        worker.count { $0.openConnections += 1 }
        worker.loop.register(transport.fd, interest: .read, handler: self)
        if expectsProxyHeader, !worker.config.proxyProtocolFrom.contains(where: { $0.contains(peer.host) }) {
            // A peer that may not send the header is closed at accept, not when (or if) it first writes.
            worker.loop.deferUntilIterationEnd { [self] in
                if life.phase == .proxyHeader { readProxyHeader() }
            }
        }
    }

    var scheme: StaticString { kind == .tls ? "https" : "http" }

    /// The HSTS value for responses on this connection (TLS listeners only).
    var hsts: String? { kind == .tls ? worker.config.hsts : nil }
    /// The same as the whole header line (`Worker.hstsLine`), for the heads Tollgate writes itself.
    var hstsLine: [UInt8]? { kind == .tls ? worker.hstsLine : nil }

    // MARK: EventHandler

    var deadline: UInt64 { life.deadline }

    func deadlineExpired(now: UInt64) {
        if case .close(let reason) = life.deadlineReached(now: now) { close(reason) }
    }

    func ready(_ events: ReadyEvents) {
        switch life.phase {
        case .closed:
            return
        case .proxyHeader:
            readProxyHeader()
        case .handshake:
            continueHandshake()
        case .lingering:
            linger()
        case .waitingHead, .exchange:
            turnStarts = 0
            if events.contains(.writable) { flush() }
            guard !life.isClosed else { return }
            if events.contains(.readable) {
                readAvailable()
            } else if events.contains(.peerClosed) || events.contains(.error) {
                // Not reading right now (busy with a response), but the client went away: stop the upstream too.
                if wantsRead { readAvailable() } else { close(exchange == nil ? .clientClosed : .clientAborted) }
            }
        }
    }

    // MARK: TLS handshake

    /// The client's real address from a PROXY protocol header. False when that client is already at
    /// `max-connections-per-client` (counted as refused; the caller closes the connection).
    func adoptClientAddress(_ address: SocketAddress) -> Bool {
        clientFromProxyHeader = true
        peerHost = address.host
        peerText = address.hostBytes
        headParts = nil
        // The per-client cap counts the client the header names, not the load balancer that connected.
        if case .admitted(let old) = limitAdmission, let limiter = worker.connectionLimiter {
            let moved = limiter.move(old, to: address.host)
            limitAdmission = .admitted(moved.key)
            if !moved.ok {
                worker.count { $0.connectionsRefused[1] += 1 }
                return false
            }
        }
        return true
    }

    func continueHandshake() {
        guard case .tls(_, let session) = transport else { return }
        switch session.handshake() {
        case .bytes:
            // A TLS-ALPN-01 validation needs nothing past the handshake (RFC 8737 section 3).
            if session.answeredACMEChallenge {
                close(.completed)
                return
            }
            life.handshakeFinished()
            handshakeWantsWrite = false
            worker.count {
                $0.handshakes += 1
                if session.resumed { $0.handshakesResumed += 1 }
            }
            updateInterest()
            // The client may have sent its first request in the same flight as its Finished message.
            readAvailable()
        case .wouldBlock(let wantsWrite):
            handshakeWantsWrite = wantsWrite
            worker.loop.setInterest(transport.fd, wantsWrite ? .write : .read)
        case .eof, .failed:
            worker.count { $0.handshakeFailures += 1 }
            close(.tlsHandshakeFailed)
        }
    }

    // MARK: reading

    /// Whether the connection wants client bytes now.
    var wantsRead: Bool {
        switch life.phase {
        case .proxyHeader, .handshake, .lingering: return true
        case .closed: return false
        case .waitingHead:
            // A client that does not read its answers is not read either: every byte queued for it, Tollgate's own
            // answers included, counts against the bound proxied bodies have (`relayResponse`).
            return !life.closesAfterFlush && flow.mayRead(queued: pendingOutput)
        case .exchange:
            guard let ex = exchange else { return false }
            // The head's ranges point into `input` while a phase that reads it waits to run (the shared rate limit
            // decides first): keep reading (a disconnect is seen at once, and no epoll_ctl churn per request) only
            // into the room after the buffered bytes, so nothing is moved or overwritten.
            if ex.progress.heldHead != nil { return input.room > 0 }
            let hasRoom = !input.hasBuffer || input.room > 0 || input.start > 0
            guard !ex.requestDone, let up = ex.upstream else {
                // Keep watching the client while its response is produced or its password checked (no epoll_ctl
                // churn per request, and a disconnect is seen at once); early bytes wait in the buffer.
                return hasRoom
            }
            return up.backlog < worker.config.backpressureBytes
        }
    }

    func readAvailable() {
        while life.phase == .waitingHead || life.phase == .exchange {
            guard wantsRead else { break }
            let holdsHead = exchange?.progress.heldHead != nil
            if !holdsHead && input.rewindIfDrained() { scanned = 0 }
            if !input.hasBuffer {
                input.adopt(worker.takeInput())
                scanned = 0
            } else if input.room == 0 {
                if holdsHead || !makeRoom() { break }
            }
            let room = input.room
            switch input.read(transport.read(into:at:count:)) {
            case .bytes(let n):
                processInput()
                // This turn's requests are done; the socket is read again on the next one.
                if turnYielded {
                    if !life.isClosed { updateInterest() }
                    return
                }
                // A short read emptied the socket: epoll (level-triggered) says when more arrives, so skip the read
                // that would only return EAGAIN. Bytes OpenSSL still holds are read now (epoll cannot see them).
                if n < room && transport.bufferedPlaintext == 0 {
                    if !life.isClosed { updateInterest() }
                    return
                }
            case .wouldBlock:
                updateInterest()
                return
            case .eof:
                close(exchange == nil && !input.hasUnread ? .clientClosed : .clientAborted)
                return
            case .failed:
                close(exchange == nil ? .clientError : .clientAborted)
                return
            }
        }
        updateInterest()
    }

    /// Compacts the input buffer, or grows it while a head is still incomplete. False if there is no room.
    private func makeRoom() -> Bool {
        let moved = input.compact()
        if moved > 0 {
            scanned = max(0, scanned - moved)
            return true
        }
        if exchange == nil && input.bytes.count < worker.config.limits.maxHeadBytes + 4096 {
            input.grow()
            return true
        }
        return false
    }

    /// Acts on buffered client bytes: parses heads and starts exchanges, or feeds a request body upstream.
    func processInput() {
        while life.phase == .waitingHead || life.phase == .exchange {
            if let ex = exchange {
                if !ex.requestDone && input.hasUnread { pumpRequestBody(ex) }
                return
            }
            guard !life.closesAfterFlush, input.hasUnread else { return }
            if let sink = worker.logSink, sink.isBehind {
                // The access log's writer is behind: new requests wait a moment rather than have their lines dropped.
                waitForLogWriter()
                return
            }
            let wasHolding = flow.holding
            if !flow.mayStart(queued: pendingOutput) {
                // Pipelined requests wait, unparsed, until the client has read what it was sent (`flush`).
                if !wasHolding { worker.count { $0.outputHolds += 1 } }
                return
            }
            life.headArriving(now: worker.loop.now)
            if !headMayBeDecided() { return }
            switch worker.requestParser.parse(input.bytes, from: input.start, to: input.end, into: &worker.scratchHead) {
            case .needMore:
                return
            case .invalid(let error):
                refuse(ErrorResponse.fromParse(error))
                return
            case .complete:
                if turnStarts >= ClientConnection.requestsPerTurn {
                    // Enough for one turn: the rest of this client's pipeline waits for the next loop iteration,
                    // after every other ready connection had its turn (nginx reads one buffer per event, HAProxy
                    // bounds the requests parsed per wake-up the same way). The head just parsed is scanned again.
                    scanned = input.start
                    scheduleNextTurn()
                    return
                }
                turnStarts += 1
                startExchange()
            }
        }
    }

    /// Pipelined requests one connection may start per turn (an epoll event, or the continuation below).
    static let requestsPerTurn = 16

    /// Tries again in a millisecond (a timer, not a busy loop), while the access log's writer catches up.
    private func waitForLogWriter() {
        guard !turnYielded else { return }
        turnYielded = true
        scanned = input.start
        worker.loop.schedule(afterNanos: 1_000_000) { [self] in nextTurn() }
    }

    /// Goes on with this client's pipelined requests in the next loop iteration.
    private func scheduleNextTurn() {
        guard !turnYielded else { return }
        turnYielded = true
        worker.loop.deferUntilIterationEnd { [self] in nextTurn() }
    }

    /// A new turn: the buffered pipeline first, then the socket.
    private func nextTurn() {
        turnYielded = false
        turnStarts = 0
        guard life.phase == .waitingHead || life.phase == .exchange else { return }
        processInput()
        if !life.isClosed && !turnYielded { readAvailable() }
    }

    /// A head can only complete (or newly fail) when a line ends or a size limit is reached: skip the parse
    /// otherwise, so a slow-loris head costs one scan per line, not one per byte.
    private func headMayBeDecided() -> Bool {
        let from = max(scanned, input.start)
        scanned = input.end
        if from < input.end && input.bytes[from..<input.end].contains(0x0A) { return true }
        let buffered = input.count
        let limits = worker.config.limits
        if buffered >= limits.maxHeadBytes { return true }
        // A request line still without its end must be refused (414) once it reaches its limit.
        return buffered >= limits.maxRequestLine && !input.bytes[input.unread].contains(0x0A)
    }

    // MARK: writing

    /// Writes pending output; on completion closes or lingers if asked, and lets a paused upstream resume.
    func flush() {
        var progressed = false
        while outStart < out.count {
            switch transport.write(out, at: outStart, count: out.count - outStart) {
            case .bytes(let n):
                outStart += n
                progressed = true
            case .wouldBlock:
                life.outputBlocked(now: worker.loop.now, progressed: progressed)
                // A client that reads slowly but never empties its backlog would otherwise keep every byte
                // already written in the buffer (the bound counts only what is queued). Dropping the written
                // prefix once it reaches one read buffer keeps the buffer within the bound plus two reads, at the
                // cost of one copy of the queued bytes per 16 KiB written at most.
                if outStart >= Worker.bufferSize {
                    out.removeSubrange(0..<outStart)
                    outStart = 0
                }
                let queued = pendingOutput, held = out.count
                worker.count {
                    $0.outputQueuedPeak = max($0.outputQueuedPeak, queued)
                    $0.outputBufferPeak = max($0.outputBufferPeak, held)
                }
                updateInterest()
                return
            case .eof, .failed:
                close(.clientAborted)
                return
            }
        }
        let end = life.outputDrained(now: worker.loop.now, exchangeOpen: exchange != nil)
        if exchange == nil { worker.recycleOutput(&out) } else { out.removeAll(keepingCapacity: true) }
        outStart = 0
        switch end {
        case .finish:
            // Nothing more can come that a reset would lose our answer to: close_notify, then close at once (the
            // close sends the FIN; a half-close first would only cost a system call).
            transport.sendCloseNotify()
            close(.completed)
            return
        case .linger:
            startLinger()
            return
        default:
            break
        }
        exchange?.upstream?.resume()
        if flow.drained() {
            // The client read everything: the pipelined requests that waited go on (after this event, like any
            // other deferred work).
            worker.loop.deferUntilIterationEnd { [self] in
                if life.phase == .waitingHead && exchange == nil { processInput(); readAvailable() }
            }
        }
        updateInterest()
    }

    var pendingOutput: Int { out.count - outStart }

    func updateInterest() {
        guard life.phase != .closed, life.phase != .handshake, life.phase != .proxyHeader else { return }
        var interest: Interest = []
        if wantsRead { interest.insert(.read) }
        if outStart < out.count { interest.insert(.write) }
        worker.loop.setInterest(transport.fd, interest)
        // Plaintext already decrypted inside OpenSSL produces no epoll event: read it now.
        if interest.contains(.read) && transport.bufferedPlaintext > 0 {
            worker.loop.deferUntilIterationEnd { [self] in
                if wantsRead { readAvailable() }
            }
        }
    }
}
