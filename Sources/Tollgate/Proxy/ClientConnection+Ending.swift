import TollgateHTTP
import TollgateIO

/// How exchanges and connections end: metrics and the access-log line for each exchange, refusals before an exchange
/// exists, graceful drain, lingering close, and the one `close` that releases everything.
extension ClientConnection {
    /// Adds a finished exchange to this worker's metrics.
    private func countExchange(_ ex: Exchange, reason: CloseReason, status: Int, now: UInt64) {
        guard kind != .metrics else { return }
        worker.count { c in
            let family: Int
            switch ex.family {
            case .ollama: family = 0
            case .openAI: family = 1
            case .anthropic: family = 2
            }
            let statusClass = min(4, max(0, status / 100 - 1))
            c.requests[family][statusClass] += 1
            if ex.authResult.isCounted { c.auth[ex.authResult.rawValue] += 1 }
            if reason == .rateLimited { c.rateLimited += 1 }
            if status == 429 && reason == .rejected && ex.route == .inference && ex.authResult == .allowed { c.queueRejected += 1 }
            if let failure = UpstreamFailure(reason) { c.upstreamErrors[failure.rawValue] += 1 }
            if ex.firstByteAt != 0 {
                let seconds = Double(ex.firstByteAt &- ex.start) / 1e9
                Metrics.bucketCounts(&c.ttfb, seconds)
                c.ttfbSum += seconds
                c.ttfbCount += 1
            }
            if ex.upstreamStart != 0 {
                let seconds = Double(now &- ex.upstreamStart) / 1e9
                Metrics.bucketCounts(&c.upstreamSeconds, seconds)
                c.upstreamSum += seconds
                c.upstreamCount += 1
            }
            if let usage = ex.tokenUsage {
                let key = "\(ex.user ?? "-")\u{0}\(ex.model.map { worker.modelLabel($0) } ?? "-")"
                let old = c.tokens[key] ?? (0, 0)
                c.tokens[key] = (old.0 + usage.prompt, old.1 + usage.completion)
            }
        }
    }

    /// Gives back what the exchange holds: its share of the body budget, its peer lease or place in that queue,
    /// its slot or place in the wait queue, its quota reservation. Called once whenever an exchange ends.
    func releaseAdmission(_ ex: Exchange) {
        settleQuota(ex)
        if ex.bufferCharge > 0 {
            worker.bodyBudget.release(ex.bufferCharge, owner: bufferOwner(ex))
            let held = worker.bodyBudget.held
            worker.count { $0.bodyBuffered = held }
            ex.bufferCharge = 0
        }
        releasePeer(ex)
        guard let slots = worker.slots else { return }
        if let grant = ex.slot {
            ex.slot = nil
            slots.release(grant)
        }
        if let ticket = ex.ticket {
            ex.ticket = nil
            // False: the slot was granted meanwhile; its grant finds the exchange gone when it resumes, and gives
            // the slot back.
            slots.cancel(ticket: ticket)
        }
    }

    /// Answers a request Tollgate refuses before any exchange exists (bad framing) and closes.
    func refuse(_ error: ErrorResponse, client: [UInt8]? = nil) {
        var error = error
        if let hsts { error.headers.append(("Strict-Transport-Security", hsts)) }
        error.serialize(for: .ollama, requestID: nil, close: true, into: &out)
        worker.log.record(AccessRecord(
            requestID: Array("-".utf8), client: client ?? peerText, user: nil, method: "-", path: "-", status: error.status,
            bytesIn: input.count, bytesOut: out.count - outStart, durationNanos: 0, ttfbNanos: nil,
            upstreamNanos: nil, model: nil, promptTokens: nil, completionTokens: nil, rateLimit: .notReached, auth: .notReached,
            reason: .badRequest))
        input.consumeAll()
        life.refused()
        flush()
    }

    /// Stops keep-alive for the drain: idle connections close now, busy ones after their response.
    func drain() {
        guard !life.isClosed else { return }
        if let ex = exchange {
            ex.clientKeepAlive = false
            return
        }
        // Closed now only with nothing in progress; otherwise a head is arriving (it is served with Connection:
        // close) or a last response is being written.
        if case .close(let reason) = life.draining(unreadInput: input.hasUnread, outputPending: outStart != out.count) {
            close(reason)
        }
    }

    /// Sends close_notify and FIN, then reads and discards what the client still sends for a short while (`life`
    /// is lingering, under its linger timer), so that our last response is not destroyed by a reset (nginx
    /// lingering_close).
    func startLinger() {
        transport.shutdownWrite()
        worker.loop.setInterest(transport.fd, .read)
        linger()
    }

    func linger() {
        if !input.hasBuffer { input.adopt(worker.takeInput()) }
        for _ in 0..<16 {
            switch input.discard(transport.read(into:at:count:)) {
            case .bytes: continue
            case .wouldBlock: return
            case .eof, .failed:
                close(.completed)
                return
            }
        }
    }

    /// Releases everything: the upstream of an exchange in flight (which cancels generation), the TLS session and
    /// the socket. Idempotent.
    func close(_ reason: CloseReason) {
        guard life.close() else { return }
        if let ex = exchange {
            if let up = ex.upstream {
                ex.upstream = nil
                up.close()
            }
            releaseAdmission(ex)
            logExchange(ex, reason: reason, status: ex.status == 0 || !ex.headSent ? 499 : ex.status)
            exchange = nil
        }
        // Closing the socket takes it out of epoll (nothing else holds it): no EPOLL_CTL_DEL first.
        worker.loop.forget(transport.fd)
        transport.close()
        if case .admitted(let key) = limitAdmission { worker.connectionLimiter?.release(key) }
        limitAdmission = nil
        worker.recycleInput(&input)
        worker.recycleOutput(&out)
        worker.count { $0.openConnections -= 1 }
        worker.connectionClosed()
    }

    func logExchange(_ ex: Exchange, reason: CloseReason, status: Int) {
        let now = worker.loop.now
        countExchange(ex, reason: reason, status: status, now: now)
        if let ledger = worker.ledger { recordUsage(ex, status: status, now: now, reason: reason, in: ledger) }
        // A scrape is neither counted nor logged: a Prometheus polling every few seconds would fill the access
        // log with its own lines.
        guard worker.log.enabled, kind != .metrics else { return }
        worker.log.record(AccessRecord(
            // The client a trusted proxy names, as the rate limit and the login throttle count it; else the peer.
            requestID: ex.requestID.bytes,
            client: ex.client.map { Array(SocketAddress(host: $0, port: 0).hostString.utf8) } ?? peerText,
            user: ex.user ?? ex.attemptedUser.map(AccessRecord.clippedUser), method: ex.methodText,
            path: AccessRecord.clipped(ex.path),
            status: status, bytesIn: ex.bytesIn, bytesOut: ex.bytesOut, durationNanos: now &- ex.start,
            ttfbNanos: ex.firstByteAt == 0 ? nil : ex.firstByteAt &- ex.start,
            upstreamNanos: ex.upstreamStart == 0 ? nil : now &- ex.upstreamStart,
            model: ex.model, promptTokens: ex.tokenUsage?.prompt,
            completionTokens: ex.tokenUsage?.completion, rateLimit: ex.rateLimitResult,
            auth: ex.authResult, reason: reason,
            backend: worker.peers.logName(ex.backend), ollamaKey: ex.ollamaKey, keyID: ex.keyID,
            ollamaKeyResult: ex.ollamaKeyResult))
    }

    /// Hands the exchange's row to the usage ledger (an append under a short lock). Rows are kept for requests that
    /// passed authentication, or with authentication off for every request the rate limit let through; a refused
    /// login, a public path and a metrics scrape leave none, so that nobody can fill the ledger without a password.
    private func recordUsage(_ ex: Exchange, status: Int, now: UInt64, reason: CloseReason, in ledger: UsageLedger) {
        guard kind != .metrics else { return }
        let counted = worker.authenticator == nil ? ex.authResult == .off && reason != .rateLimited
                                                  : ex.authResult == .allowed
        guard counted else { return }
        ledger.record(UsageRow(
            time: ledger.settings.clock(), requestID: ex.requestID.text, user: ex.user,
            keyID: ex.keyID, model: ex.model, route: AccessRecord.clipped(ex.path), status: status,
            promptTokens: ex.tokenUsage?.prompt, completionTokens: ex.tokenUsage?.completion,
            durationMicros: Int64((now &- ex.start) / 1000),
            ttfbMicros: ex.firstByteAt == 0 ? nil : Int64((ex.firstByteAt &- ex.start) / 1000),
            backend: worker.peers.logName(ex.backend), chargedTokens: ex.charged.tokens,
            countedRequest: ex.charged.request))
    }
}
