import TollgateHTTP
import TollgateIO

/// The one way a request reaches the upstream: the worker's peers (`UpstreamPeers`) pick a backend, the request goes
/// out on a pooled or a new connection to it, and how it went is reported back. Whether a request is kept to be sent
/// again to another backend, and whether it may wait for one, is the peers' policy, not a second path here.
extension ClientConnection {
    /// Every phase let `ex` through: answers a model list the peers merge, else asks them for a peer. The body was
    /// read whole before (`BodyReading`) where a decision needs it or the peers keep requests for another backend.
    func proxy(_ ex: Exchange) {
        if let refusal = rewriteBody(ex) {
            respond(ex, refusal, reason: .rejected)
            return
        }
        if ex.wholeBody && ex.isChunked && !ex.bodyLengthFramed { frameStagedBody(ex) }
        if answerModelList(ex) { return }
        if ex.requestDone && worker.peers.keepsRequests { ex.replayable = true }
        choosePeer(ex)
    }

    /// Asks the peers for a backend: go, wait in the queue, or answer 404/429/502.
    func choosePeer(_ ex: Exchange) {
        let peers = worker.peers
        let choice = peers.get(model: requestedModel(ex), counted: ex.route == .inference, excluded: ex.triedBackends) {
            let box = UncheckedBox((self, ex))
            let loop = worker.loop
            return UpstreamPeers.Waiter(nowMillis: loop.now / 1_000_000, onGranted: { lease in
                // A loop that has stopped never runs the hand-over: the lease goes back here (the backend set is
                // thread-safe), or the backend keeps it counted.
                if !loop.execute({ box.value.0.peerGranted(box.value.1, lease) }) { peers.free(lease) }
            }, onExpired: {
                loop.execute { box.value.0.peerExpired(box.value.1) }
            }, onUnservable: { choice in
                loop.execute { box.value.0.peerUnservable(box.value.1, choice) }
            })
        }
        switch choice {
        case .acquired(let lease):
            if ex.triedBackends != 0 { peers.countFailover() }
            send(ex, lease)
        case .queued(let ticket):
            if ex.triedBackends != 0 { peers.countFailover() }
            ex.backendTicket = ticket
            updateInterest()
        case .noModel, .unavailable:
            refuse(ex, choice)
        case .rejected(let retryAfter):
            respond(ex, ErrorResponse(status: 429, message: "every backend is busy and the wait queue is full; retry in \(retryAfter) s",
                                      headers: [("Retry-After", String(retryAfter))]), reason: .rejected)
        }
    }

    /// No backend can serve the request: 404 as Ollama words it when no healthy backend has its model, else 502
    /// (counted as an upstream error: refused, or closed when backends were tried and failed).
    private func refuse(_ ex: Exchange, _ choice: BackendChoice) {
        if case .noModel = choice {
            respond(ex, ErrorResponse(status: 404, message: "model '\(requestedModel(ex) ?? "")' not found"), reason: .rejected)
            return
        }
        if ex.triedBackends == 0 {
            respond(ex, .badGateway("no healthy backend"), reason: .upstreamRefused)
        } else {
            answerUpstreamError(ex, .badGateway("no backend left to try"), upstream: "last: \(ex.lastBackendError)",
                                reason: .upstreamClosed)
        }
    }

    /// The model a request needs its backend to have: an inference request's, and `/api/show`'s (Ollama answers it
    /// only for models it has); nil for everything else.
    private func requestedModel(_ ex: Exchange) -> String? {
        ex.bodyNamesModel ? ex.model : nil
    }

    private func peerGranted(_ ex: Exchange, _ lease: BackendLease) {
        guard owns(ex), ex.backendTicket != nil else {
            worker.peers.free(lease)
            return
        }
        ex.backendTicket = nil
        send(ex, lease)
        if !life.isClosed { readAvailable() }
    }

    private func peerExpired(_ ex: Exchange) {
        guard owns(ex), ex.backendTicket != nil else { return }
        ex.backendTicket = nil
        let seconds = worker.config.concurrency?.retryAfterSeconds ?? 5
        respond(ex, ErrorResponse(status: 429, message: "every backend for this request stayed busy for the whole wait; retry in \(seconds) s",
                                  headers: [("Retry-After", String(seconds))]), reason: .rejected)
    }

    /// An ejection or a catalog change left the waiting request no backend: answered as if it arrived now.
    private func peerUnservable(_ ex: Exchange, _ choice: BackendChoice) {
        guard owns(ex), ex.backendTicket != nil else { return }
        ex.backendTicket = nil
        refuse(ex, choice)
    }

    /// Sends the request to the leased backend on a pooled connection to it, or a new one. `resend`: the request
    /// exactly as a pooled connection that turned out stale was given it, for a new connection to the same backend.
    private func send(_ ex: Exchange, _ lease: BackendLease, resend: [UInt8]? = nil) {
        // One reference to the worker for the whole send, not one around each use.
        let worker = self.worker
        let b = lease.backend
        ex.backendLease = lease
        ex.backend = b
        ex.triedBackends |= 1 << UInt64(b)
        // A kept copy belongs to the connection it was written to.
        ex.replay = nil
        var up: UpstreamConnection?
        if resend == nil, let idle = worker.takeIdleUpstream(backend: b) {
            up = idle
        } else if case .success(let fresh) = UpstreamConnection.open(worker: worker, backend: b) {
            up = fresh
        }
        guard let up else {
            connectFailed(ex, backend: b)
            return
        }
        ex.upstream = up
        if ex.upstreamStart == 0 { ex.upstreamStart = worker.loop.now }
        let host = worker.backendHosts[b]
        if let resend {
            up.enqueue(resend)
        } else if ex.replayable {
            // Kept until the first response byte, for another backend.
            up.enqueueHead(ex.upstreamHead, host: host)
            up.enqueue(ex.stagedBody)
        } else {
            up.enqueueHead(taking: &ex.upstreamHead, host: host, written: worker.upstreamHost)
            if ex.wholeBody {
                up.enqueue(ex.stagedBody)
                ex.stagedBody = []
            }
        }
        if !ex.requestDone {
            sendContinue(ex)
            if input.hasUnread {
                moveBody(ex, into: up)
                guard exchange === ex, ex.upstream === up else { return }
            }
        }
        // The whole request as a pooled connection got it: sent once more on a new connection if the backend had
        // closed the pooled one while it was idle.
        if up.reused && ex.requestDone { ex.replay = up.lendUnsentRequest() }
        if !ex.requestDone { life.bodyExpected(now: worker.loop.now) }
        up.attach(self)
        if !up.isConnecting && !up.flush() {
            upstreamFailed(up, reason: .upstreamClosed, detail: "write failed")
            return
        }
        if outStart < out.count { flush() } else { updateInterest() }
    }

    /// No connection to backend `b` could be started: another backend when the request was kept, else 502.
    private func connectFailed(_ ex: Exchange, backend b: Int) {
        let host = worker.config.upstreams[b].address.hostHeader
        let detail = "cannot connect"
        worker.peers.report(b, .failed(detail: detail))
        ex.lastBackendError = "\(host): \(detail)"
        guard ex.replayable else {
            answerUpstreamError(ex, .badGateway(detail), upstream: "upstream \(host)", reason: .upstreamRefused)
            return
        }
        releasePeer(ex)
        choosePeer(ex)
    }

    /// A pooled connection the backend had closed while idle (it failed before any response byte): not the
    /// backend's fault; the same request goes once more on a new connection to the same backend. False when the
    /// request was not kept for that (it was still streaming, or this was the second try).
    func resendStale(_ ex: Exchange, _ up: UpstreamConnection) -> Bool {
        guard up.reused, up.bufferedInput == 0, mayResend(ex, up), let replay = ex.replay, let lease = ex.backendLease
        else { return false }
        ex.upstream = nil
        up.close()
        send(ex, lease, resend: replay)
        return true
    }

    /// The backend failed before any response byte: the failure counts against it, and a kept request goes to
    /// another backend. False when the request was not kept (the caller answers 502/504).
    func failOver(_ ex: Exchange, _ up: UpstreamConnection, detail: String) -> Bool {
        guard let b = ex.backend else { return false }
        worker.peers.report(b, .failed(detail: detail))
        guard ex.replayable, up.bufferedInput == 0, mayResend(ex, up), ex.backendLease != nil else { return false }
        ex.lastBackendError = "\(worker.config.upstreams[b].address.hostHeader): \(detail)"
        if up.wroteAny { ex.abandonedBackends += 1 }
        ex.upstream = nil
        up.close()
        releasePeer(ex)
        choosePeer(ex)
        return true
    }

    /// Whether `ex` may go again after `up` failed under it before answering: the backend cannot have acted on it
    /// (no byte of it was written), or acting twice is acting once: a read (`/api/show`, a GET elsewhere), or a
    /// local generation, which changes nothing and which Ollama cancels when its connection closes. A pull, push,
    /// create, copy or delete that reached Ollama is never sent again, to it or to another backend (nginx's
    /// `non_idempotent` rule), nor is a cloud model's generation, which ollama.com may already have billed.
    private func mayResend(_ ex: Exchange, _ up: UpstreamConnection) -> Bool {
        if !up.wroteAny { return true }
        switch ex.route {
        // Model changes and uploads, whatever their method (Ollama's delete is DELETE): never twice.
        case .admin, .blobs, .account: return false
        case .readOnly: return true
        case .unknown: return ex.method.isSafe
        case .inference: return !(ex.model.map(CloudModel.isCloud) ?? false)
        }
    }

    /// The backend began to answer (an interim 1xx counts: it has the request): the kept copy is no longer sent
    /// anywhere again.
    func peerResponding(_ ex: Exchange) {
        if var replay = ex.replay {
            // Its buffer was the request's write buffer: pooled again rather than freed.
            ex.replay = nil
            worker.recycleOutput(&replay)
        }
        if ex.replayable {
            ex.replayable = false
            ex.stagedBody = []
        }
    }

    /// The first response byte arrived: the backend answered, and the kept copy of the request is no longer needed.
    func peerAnswered(_ ex: Exchange) {
        peerResponding(ex)
        guard let b = ex.backend else { return }
        worker.peers.report(b, .answered)
    }

    /// Gives back the exchange's lease or its place in the peers' queue.
    func releasePeer(_ ex: Exchange) {
        if let lease = ex.backendLease {
            ex.backendLease = nil
            worker.peers.free(lease)
        }
        if let ticket = ex.backendTicket {
            ex.backendTicket = nil
            // False: granted meanwhile; `peerGranted` sees no ticket and gives that lease back.
            _ = worker.peers.cancel(ticket: ticket)
        }
    }

    /// Invites the body with `100 Continue` when the client asked for it and has sent none yet. The only place
    /// Tollgate sends it (Expect is never forwarded upstream), and at most once per request.
    func sendContinue(_ ex: Exchange) {
        guard ex.expectContinue && !input.hasUnread else { return }
        ex.expectContinue = false
        HTTPWriter.appendRaw("HTTP/1.1 100 Continue\r\n\r\n", to: &out)
    }
}
