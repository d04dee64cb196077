import TollgateHTTP
import TollgateIO

/// Several Ollama backends: the whole request is read before a backend is chosen (an inference request's model is
/// in its body), kept until the first response byte, and sent again to another backend when one fails before
/// answering. Only used when `Worker.backends` is set; the single-upstream path never comes here.
extension ClientConnection {
    /// Chooses a backend. The body was read in full before (`BodyReading`), except for blob uploads (gigabytes) and
    /// any body with a single backend (a `max=` alone: nothing to choose, nowhere to fail over to), which stream as
    /// on the single-upstream path.
    func proxyToBackends(_ ex: Exchange) {
        if answerModelList(ex) { return }
        if ex.requestDone { ex.replayable = true }
        chooseBackend(ex)
    }

    /// Asks the backend set for a backend: go, wait in the queue, or answer 404/429/502.
    func chooseBackend(_ ex: Exchange) {
        guard let set = worker.backends else { return }
        let counted = ex.route == .inference
        let requested = requestedModel(ex)
        let box = UncheckedBox((self, ex))
        let loop = worker.loop
        let choice = set.acquire(model: requested.map(ModelName.normalize), counted: counted,
                                 excluded: ex.triedBackends, nowMillis: loop.now / 1_000_000, onGranted: { lease in
            loop.execute { box.value.0.backendGranted(box.value.1, lease) }
        }, onExpired: {
            loop.execute { box.value.0.backendExpired(box.value.1) }
        }, onUnservable: { choice in
            loop.execute { box.value.0.backendUnservable(box.value.1, choice) }
        })
        switch choice {
        case .acquired(let lease):
            if ex.triedBackends != 0 { set.countFailover() }
            dispatch(ex, lease, pooled: true)
        case .queued(let ticket):
            if ex.triedBackends != 0 { set.countFailover() }
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
        let why = ex.triedBackends == 0 ? "no healthy backend" : "no backend left to try (last: \(ex.lastBackendError))"
        respond(ex, .badGateway(why), reason: ex.triedBackends == 0 ? .upstreamRefused : .upstreamClosed)
    }

    /// The model a request needs its backend to have: an inference request's, and `/api/show`'s (Ollama answers it
    /// only for models it has); nil for everything else.
    private func requestedModel(_ ex: Exchange) -> String? {
        ex.bodyNamesModel ? ex.model : nil
    }

    private func backendGranted(_ ex: Exchange, _ lease: BackendLease) {
        guard owns(ex), ex.backendTicket != nil else {
            worker.backends?.release(lease)
            return
        }
        ex.backendTicket = nil
        dispatch(ex, lease, pooled: true)
        if state != .closed { readAvailable() }
    }

    private func backendExpired(_ ex: Exchange) {
        guard owns(ex), ex.backendTicket != nil else { return }
        ex.backendTicket = nil
        let seconds = worker.config.concurrency?.retryAfterSeconds ?? 5
        respond(ex, ErrorResponse(status: 429, message: "every backend for this request stayed busy for the whole wait; retry in \(seconds) s",
                                  headers: [("Retry-After", String(seconds))]), reason: .rejected)
    }

    /// An ejection or a catalog change left the waiting request no backend: answered as if it arrived now.
    private func backendUnservable(_ ex: Exchange, _ choice: BackendChoice) {
        guard owns(ex), ex.backendTicket != nil else { return }
        ex.backendTicket = nil
        refuse(ex, choice)
    }

    /// Sends the request to the leased backend: a pooled connection to that backend (unless `pooled` is false) or a
    /// new one, with that backend's Host.
    private func dispatch(_ ex: Exchange, _ lease: BackendLease, pooled: Bool) {
        let b = lease.backend
        ex.backendLease = lease
        ex.backend = b
        ex.triedBackends |= 1 << UInt64(b)
        var up: UpstreamConnection?
        if pooled, let idle = worker.takeIdleUpstream(backend: b) {
            idle.reused = true
            up = idle
        } else if case .success(let fresh) = UpstreamConnection.open(worker: worker, backend: b) {
            up = fresh
        }
        guard let up else {
            failOver(ex, detail: "cannot connect to \(worker.config.upstreams[b].address.hostHeader)")
            return
        }
        ex.upstream = up
        if ex.upstreamStart == 0 { ex.upstreamStart = worker.loop.now }
        RequestRewriter.appendReplacingHost(ex.upstreamHead, host: worker.backendHosts[b], to: &up.out)
        if ex.replayable {
            up.out.append(contentsOf: ex.stagedBody)
        } else {
            // A streamed body (blob uploads): as on the single-upstream path, no second chance.
            worker.recycleOutput(&ex.upstreamHead)
            if ex.expectContinue && inStart == inEnd {
                HTTPWriter.appendRaw("HTTP/1.1 100 Continue\r\n\r\n", to: &out)
            }
            timer = .body
            timerDeadline = worker.loop.now &+ worker.seconds(worker.config.timeouts.clientBodyIdle)
        }
        up.attach(self)
        if !ex.replayable && inStart < inEnd {
            pumpRequestBody(ex)
            guard exchange === ex, ex.upstream === up else { return }
        } else if !up.isConnecting && !up.flush() {
            upstreamFailed(up, reason: .upstreamClosed, detail: "write failed")
            return
        }
        if outStart < out.count { flush() } else { updateInterest() }
    }

    /// The backend failed before any response byte: send the kept request to another backend. False when that is
    /// not possible (the response began, or the body was streamed): the caller answers as on the single path.
    func failOverIfPossible(_ ex: Exchange, _ up: UpstreamConnection, detail: String) -> Bool {
        guard let set = worker.backends, !ex.headSent, let b = ex.backend else { return false }
        guard ex.replayable, up.bufferedInput == 0, ex.backendLease != nil else {
            // No second chance for this request, but the failure still counts against the backend.
            set.recordFailure(b, detail: detail)
            return false
        }
        ex.upstream = nil
        up.close()
        if up.reused && !ex.staleRetried, let lease = ex.backendLease {
            // A pooled connection the backend had closed while idle: not the backend's fault, try a fresh one.
            ex.staleRetried = true
            dispatch(ex, lease, pooled: false)
            return true
        }
        failOver(ex, detail: detail)
        return true
    }

    /// Counts the failure against the backend, gives its lease back and chooses another one.
    private func failOver(_ ex: Exchange, detail: String) {
        guard let set = worker.backends else { return }
        if let b = ex.backend {
            set.recordFailure(b, detail: detail)
            ex.lastBackendError = "\(worker.config.upstreams[b].address.hostHeader): \(detail)"
        }
        releaseBackend(ex)
        guard ex.replayable else {
            respond(ex, .badGateway(ex.lastBackendError), reason: .upstreamRefused)
            return
        }
        chooseBackend(ex)
    }

    /// The first response byte arrived: the backend answered, and the kept copy of the request is no longer needed.
    func backendAnswered(_ ex: Exchange) {
        guard let set = worker.backends, let b = ex.backend else { return }
        set.recordSuccess(b)
        if ex.replayable {
            ex.replayable = false
            ex.stagedBody = []
        }
    }

    /// Gives back the exchange's backend lease or its place in the backend queue.
    func releaseBackend(_ ex: Exchange) {
        guard let set = worker.backends else { return }
        if let lease = ex.backendLease {
            ex.backendLease = nil
            set.release(lease)
        }
        if let ticket = ex.backendTicket {
            ex.backendTicket = nil
            // False: granted meanwhile; `backendGranted` sees no ticket and releases that lease.
            _ = set.cancel(ticket: ticket)
        }
    }
}
