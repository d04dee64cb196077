import TollgateHTTP
import TollgateIO

extension ClientConnection {
    /// A complete head is in `worker.scratchHead`: write the upstream head at once (the scratch head is reused by
    /// the next parse, and an exchange may wait for a password check or a slot), then run the worker's phases
    /// (`ConnectionPhases`: rate limit → authenticate → route policy → ...), which end in `proxy` or an answer.
    func startExchange() {
        let head = worker.scratchHead
        guard let ex = makeExchange(head) else { return }
        exchange = ex
        life.exchangeStarted()
        // The head's bytes stay where they are (ranges into `input` remain valid until the next read compacts
        // the buffer); only the read position moves past them.
        input.consume(head.headLength)
        scanned = input.start

        ex.phases.run(ex, head: head, on: self)
    }

    /// The exchange for `head` with its upstream head written, or nil after refusing a target that cannot be
    /// forwarded. The buffer and the worker are held in locals for the while (one reference each, not one per use),
    /// and let go before the phases run: a phase that reads the body must find the buffer unshared.
    private func makeExchange(_ head: RequestHead) -> Exchange? {
        let bytes = input.bytes
        let worker = self.worker
        // One request-target, one path: every decision below is made on the path Ollama will route on, and the
        // upstream gets a target that Go decodes to that same path.
        let canonical: RequestTarget.Canonical
        switch RequestTarget.canonicalize(bytes, head) {
        case .success(let c): canonical = c
        case .failure(let error):
            // Logged under the client a trusted proxy names, as an exchange would be.
            let client = worker.config.trustedProxies.isEmpty ? peerHost : clientHost(head)
            refuse(ErrorResponse.fromParse(error),
                   client: client == peerHost ? nil : Array(SocketAddress(host: client, port: 0).hostString.utf8))
            return nil
        }
        let family: APIFamily
        let route: RouteClass
        let forwardTarget: [UInt8]?
        let decodedPath: [UInt8]?
        switch canonical {
        case .asSent:
            family = APIFamily.of(path: bytes, head.path)
            route = RouteClass.of(bytes, path: head.path)
            forwardTarget = nil
            decodedPath = nil
        case .rewritten(let path, let target):
            family = APIFamily.of(path: path, 0..<path.count)
            route = RouteClass.of(path, path: 0..<path.count)
            forwardTarget = target
            decodedPath = path
        }
        let ex = Exchange(requestID: worker.nextRequestID(), head: head, buffer: bytes, decodedPath: decodedPath,
                          family: family, route: route, bodyLimit: route.bodyLimit(worker.config.bodyLimits),
                          start: worker.loop.now, phases: worker.phases)
        if worker.draining { ex.clientKeepAlive = false }
        if !worker.config.trustedProxies.isEmpty {
            let client = clientHost(head)
            if client != peerHost { ex.client = client }
        }
        ex.upstreamHead = worker.takeOutput()
        RequestRewriter.write(head, buffer: bytes, target: forwardTarget, parts: upstreamHeadParts(ex),
                              requestID: ex.requestID, into: &ex.upstreamHead)
        return ex
    }

    /// The parts of `ex`'s upstream head that its connection and client fix: kept for the connection's peer, made
    /// afresh for a client a trusted proxy names (who may change from one request to the next).
    private func upstreamHeadParts(_ ex: Exchange) -> RequestRewriter.Parts {
        if let client = ex.client {
            return RequestRewriter.Parts(upstreamHost: worker.upstreamHost,
                                         clientAddress: Array(SocketAddress(host: client, port: 0).hostString.utf8),
                                         scheme: scheme)
        }
        if let kept = headParts { return kept }
        let parts = RequestRewriter.Parts(upstreamHost: worker.upstreamHost, clientAddress: peerText, scheme: scheme)
        headParts = parts
        return parts
    }

    /// Starts reading the body into `stagedBody`, under the between-reads timeout and a total deadline (the
    /// `BodyReading` phase): `.next` when the body was here already, `.wait` until `bufferBody` has it all.
    func startBuffering(_ ex: Exchange) -> PhaseOutcome {
        // The declared length, or for a chunked body at least one byte, must fit before `100 Continue` invites it.
        let declared: Int
        if case .length(let n) = ex.body { declared = n } else { declared = 1 }
        if !worker.bodyBudget.fits(declared, owner: bufferOwner(ex), total: worker.bodyBufferBudget) {
            return .answer(bufferFull(), .rejected)
        }
        ex.buffering = true
        sendContinue(ex)
        ex.bodyDeadline = worker.loop.now &+ worker.seconds(worker.config.timeouts.clientBodyTotal)
        life.bodyExpected(now: worker.loop.now, totalDeadline: ex.bodyDeadline)
        let outcome = bufferBody(ex)
        guard case .wait = outcome else { return outcome }
        if outStart < out.count { flush() } else { updateInterest() }
        return .wait
    }

    /// Whose share of the body budget a body counts against: its user, or with authentication off its client.
    func bufferOwner(_ ex: Exchange) -> String {
        ex.user ?? ex.client.map { SocketAddress(host: $0, port: 0).hostString } ?? peerString
    }

    /// 503: the bodies being read whole on this worker already hold `max-body-buffered`'s share of memory, or this
    /// user's half of it.
    private func bufferFull() -> ErrorResponse {
        ErrorResponse(status: 503, message: "too many request bodies are being received right now; retry in 1 s",
                      headers: [("Retry-After", "1")])
    }

    /// Moves what has arrived of the body into the staged copy: `.next` once it is complete, `.wait` while more is
    /// to come, or the refusal.
    private func bufferBody(_ ex: Exchange) -> PhaseOutcome {
        guard input.hasUnread || ex.requestDone else { return .wait }
        if case .failed(let error, let reason) = moveBody(ex, sink: &ex.stagedBody) {
            ex.buffering = false
            return .answer(error, reason)
        }
        // Every staged byte counts against the worker's budget, so many slow bodies cannot exhaust memory.
        let added = ex.stagedBody.count - ex.bufferCharge
        if added > 0 {
            guard worker.bodyBudget.charge(added, owner: bufferOwner(ex), total: worker.bodyBufferBudget) else {
                ex.buffering = false
                return .answer(bufferFull(), .rejected)
            }
            ex.bufferCharge += added
            let held = worker.bodyBudget.held
            worker.count { $0.bodyBuffered = held }
        }
        guard ex.requestDone else {
            life.bodyExpected(now: worker.loop.now, totalDeadline: ex.bodyDeadline)
            return .wait
        }
        ex.buffering = false
        ex.wholeBody = true
        life.stopTimer()
        return .next
    }

    /// A body read whole was staged raw: framed again as one chunk, since the upstream head says chunked.
    func frameStagedBody(_ ex: Exchange) {
        var framed: [UInt8] = []
        framed.reserveCapacity(ex.stagedBody.count + 16)
        if !ex.stagedBody.isEmpty {
            HTTPWriter.appendChunkHeader(size: ex.stagedBody.count, to: &framed)
            framed.append(contentsOf: ex.stagedBody)
            HTTPWriter.appendCRLF(to: &framed)
        }
        framed.append(contentsOf: HTTPWriter.lastChunk)
        ex.stagedBody = framed
    }

    /// Moves buffered body bytes to the upstream, then flushes it; or, while the body is read whole, into the
    /// staged copy (its `BodyReading` phase goes on once it is complete).
    func pumpRequestBody(_ ex: Exchange) {
        guard let up = ex.upstream else {
            guard ex.buffering else { return }
            let outcome = bufferBody(ex)
            if case .wait = outcome { return }
            ex.phases.resume(ex, on: self) { outcome }
            return
        }
        moveBody(ex, into: up)
        guard owns(ex) else { return }
        life.bodyMoved(now: worker.loop.now, done: ex.requestDone)
        if !up.isConnecting && !up.flush() {
            upstreamFailed(up, reason: .upstreamClosed, detail: "write failed")
        }
    }

    /// What became of the body bytes just moved.
    enum BodyVerdict {
        case moved
        case failed(ErrorResponse, CloseReason)
    }

    /// Copies body bytes from the client buffer to the upstream's output (see `moveBody(_:sink:)`).
    func moveBody(_ ex: Exchange, into up: UpstreamConnection) {
        let verdict = up.enqueue { moveBody(ex, sink: &$0) }
        if case .failed(let error, let reason) = verdict { failRequest(ex, error, reason: reason) }
    }

    /// Copies body bytes from the client buffer to `sink`: an upstream's output, re-framing chunked bodies cleanly
    /// (no extensions, no trailers), or while `ex.buffering` the exchange's staged body, raw. Enforces the route's
    /// body limit.
    func moveBody(_ ex: Exchange, sink: inout [UInt8]) -> BodyVerdict {
        switch ex.body {
        case .none:
            ex.requestDone = true
        case .length(let remaining):
            let n = min(remaining, input.count)
            sink.append(contentsOf: input.bytes[input.start..<input.start + n])
            input.consume(n)
            ex.bytesIn += n
            ex.bodyBytes += n
            ex.body = .length(remaining: remaining - n)
            if remaining - n == 0 { ex.requestDone = true }
        case .chunked:
            var data = 0
            let consumed: Int
            let raw = ex.buffering
            do {
                consumed = try ex.bodyDecoder.decode(input.bytes, from: input.start, to: input.end) { range in
                    data += range.count
                    guard !range.isEmpty else { return }
                    if raw {
                        sink.append(contentsOf: input.bytes[range])
                        return
                    }
                    HTTPWriter.appendChunkHeader(size: range.count, to: &sink)
                    sink.append(contentsOf: input.bytes[range])
                    HTTPWriter.appendCRLF(to: &sink)
                }
            } catch {
                input.consumeAll()
                return .failed(ErrorResponse.fromParse(error), .badRequest)
            }
            input.consume(consumed)
            ex.bytesIn += consumed
            ex.bodyBytes += data
            if ex.bodyLimit > 0 && ex.bodyBytes > ex.bodyLimit {
                input.consumeAll()
                return .failed(.tooLarge(limit: ex.bodyLimit), .rejected)
            }
            if ex.bodyDecoder.isDone {
                if !raw { sink.append(contentsOf: HTTPWriter.lastChunk) }
                ex.requestDone = true
            }
        }
        return .moved
    }

    /// The request body cannot be completed: the upstream request is abandoned; the client gets the error if no
    /// response has started, else the connection just closes.
    func failRequest(_ ex: Exchange, _ error: ErrorResponse, reason: CloseReason) {
        if let up = ex.upstream {
            ex.upstream = nil
            up.close()
        }
        if ex.headSent {
            close(reason)
        } else {
            respond(ex, error, reason: reason)
        }
    }

    /// Who the client is: the TCP peer, or the right-most untrusted X-Forwarded-For entry when the peer is a
    /// trusted proxy.
    func clientHost(_ head: RequestHead) -> SocketAddress.Host {
        let trusted = worker.config.trustedProxies
        guard !trusted.isEmpty else { return peerHost }
        var forwarded: [ArraySlice<UInt8>] = []
        for field in head.headers where field.kind == .xForwardedFor { forwarded.append(input.bytes[field.value]) }
        return ClientIdentity.resolve(peer: peerHost, forwardedFor: forwarded, trustedProxies: trusted)
    }

    /// Ends the exchange: logs it, then either waits for the next request (keep-alive, pipelining) or closes
    /// once everything is written.
    func finishExchange(_ ex: Exchange, reason: CloseReason) {
        releaseAdmission(ex)
        logExchange(ex, reason: reason, status: ex.status)
        if ex.upstreamHead.capacity > 0 { worker.recycleOutput(&ex.upstreamHead) }
        exchange = nil
        let next = life.exchangeFinished(now: worker.loop.now, keepAlive: ex.clientKeepAlive && !ex.closeAfter,
                                         requestDone: ex.requestDone, unreadInput: input.hasUnread,
                                         draining: worker.draining, outputPending: pendingOutput > 0)
        if next == .keepAlive {
            if !input.hasUnread { worker.recycleInput(&input) }
            if input.hasUnread {
                // A pipelined request is already here.
                worker.loop.deferUntilIterationEnd { [self] in
                    if life.phase == .waitingHead && exchange == nil { processInput(); readAvailable() }
                }
            }
        } else {
            input.consumeAll()
        }
        flush()
    }
}
