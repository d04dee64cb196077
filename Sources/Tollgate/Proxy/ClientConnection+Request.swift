import TollgateHTTP
import TollgateIO

extension ClientConnection {
    /// A complete head is in `worker.scratchHead`: write the upstream head at once (the scratch head is reused by
    /// the next parse, and an exchange may wait for a password check or a slot), then run the phases in nginx's
    /// order: read head → rate limit → authenticate → route policy → proxy → log.
    func startExchange() {
        let head = worker.scratchHead
        // One request-target, one path: every decision below is made on the path Ollama will route on, and the
        // upstream gets a target that Go decodes to that same path.
        let canonical: RequestTarget.Canonical
        switch RequestTarget.canonicalize(input, head) {
        case .success(let c): canonical = c
        case .failure(let error):
            refuse(ErrorResponse.fromParse(error))
            return
        }
        let family: APIFamily
        let route: RouteClass
        let forwardTarget: [UInt8]?
        let decodedPath: [UInt8]?
        switch canonical {
        case .asSent:
            family = APIFamily.of(path: input, head.path)
            route = RouteClass.of(input, path: head.path)
            forwardTarget = nil
            decodedPath = nil
        case .rewritten(let path, let target):
            family = APIFamily.of(path: path, 0..<path.count)
            route = RouteClass.of(path, path: 0..<path.count)
            forwardTarget = target
            decodedPath = path
        }
        let ex = Exchange(requestID: worker.nextRequestID(), head: head, buffer: input, decodedPath: decodedPath,
                          family: family, route: route, bodyLimit: route.bodyLimit(worker.config.bodyLimits),
                          start: worker.loop.now)
        if worker.draining { ex.clientKeepAlive = false }
        if !worker.config.trustedProxies.isEmpty {
            let client = clientHost(head)
            if client != peerHost { ex.client = client }
        }
        let clientText = ex.client.map { Array(SocketAddress(host: $0, port: 0).hostString.utf8) } ?? peerText
        ex.upstreamHead = worker.takeOutput()
        RequestRewriter.write(head, buffer: input, target: forwardTarget, upstreamHost: worker.upstreamHost,
                              clientAddress: clientText, scheme: scheme, requestID: ex.requestID,
                              into: &ex.upstreamHead)
        exchange = ex
        phase = .exchange
        requestsServed += 1
        timer = .none
        timerDeadline = 0
        // The head's bytes stay where they are (ranges into `input` remain valid until the next read compacts
        // the buffer); only the read position moves past them.
        inStart += head.headLength
        scanned = inStart

        switch kind {
        case .redirect:
            redirect(ex, head: head)
            return
        case .metrics:
            serveMetrics(ex)
            return
        case .tls, .plain:
            break
        }
        switch rateLimit(ex, head: head) {
        case .proceed: break
        case .wait: updateInterest(); return
        case .reject(let error, let reason): respond(ex, error, reason: reason); return
        }
        passedRateLimit(ex, head: head)
    }

    /// The rate limit let the request through: preflight and health answers, CORS, then authentication.
    func passedRateLimit(_ ex: Exchange, head: RequestHead) {
        if answerPreflight(ex, head: head) || answerHealth(ex) { return }
        ex.corsOrigin = allowedOrigin(head)
        let isPublic = worker.config.publicPaths.contains(ex.path)
        if isPublic { ex.authOutcome = "public" }
        let authentication = isPublic ? .proceed : authenticate(ex, head: head)
        switch authentication {
        case .proceed: admitted(ex)
        case .wait: updateInterest()
        case .reject(let error, let reason): respond(ex, error, reason: reason)
        }
    }

    /// Authentication passed (or is off): the route policy, the user's rate, then the body read whole where a
    /// decision needs it (before any slot or backend is taken), then a slot and the upstream.
    func admitted(_ ex: Exchange) {
        if let rejection = RoutePolicy.check(exchange: ex, config: worker.config) {
            respond(ex, rejection, reason: .rejected)
            return
        }
        if let limiter = worker.userRateLimiter, let user = ex.user {
            let decision = limiter.check(user: user, nowMillis: worker.loop.now / 1_000_000)
            if case .rejected(let retryAfter, _) = decision {
                respond(ex, ErrorResponse(status: 429, message: "request rate of user \(user) exceeded: retry in \(retryAfter) s",
                                          headers: limiter.headers(for: decision)), reason: .rateLimited)
                return
            }
        }
        // GET /v1/models/{model}: Ollama's cloud passthrough reads the model from the path.
        if ex.path.hasPrefix("/v1/models/"), let refusal = cloudRefusal(String(ex.path.dropFirst(11)), ex) {
            respond(ex, refusal, reason: .rejected)
            return
        }
        if ex.bodyNamesModel && !ex.requestDone && ex.contentEncoded {
            // Ollama decompresses some encoded bodies before it reads their model; Tollgate reads the model of
            // every such body, so it takes them only as sent (HAProxy and nginx do not decode request bodies
            // either).
            respond(ex, ErrorResponse(status: 415, message: "request bodies with a Content-Encoding are not accepted on this route; send the body uncompressed"),
                    reason: .rejected)
            return
        }
        if !ex.requestDone && readsBodyWhole(ex) {
            startBuffering(ex)
            return
        }
        bodyRead(ex)
    }

    /// Inference bodies are read whole before a slot is taken, as nginx buffers request bodies by default: their
    /// model decides whether they may run at all, and a client trickling its body must not hold the GPU. With
    /// several backends every body but a blob upload is, so that it can be sent again to another backend.
    private func readsBodyWhole(_ ex: Exchange) -> Bool {
        if ex.bodyNamesModel { return true }
        return worker.backends != nil && ex.route != .blobs && worker.config.upstreams.count > 1
    }

    private func isShow(_ ex: Exchange) -> Bool { ex.method == .post && ex.path == "/api/show" }

    /// Starts reading the body into `stagedBody`, under the between-reads timeout and a total deadline.
    private func startBuffering(_ ex: Exchange) {
        // The declared length, or for a chunked body at least one byte, must fit before `100 Continue` invites it.
        let declared: Int
        if case .length(let n) = ex.body { declared = n } else { declared = 1 }
        if !worker.bodyBudget.fits(declared, owner: bufferOwner(ex), total: worker.bodyBufferBudget) {
            respond(ex, bufferFull(), reason: .rejected)
            return
        }
        ex.buffering = true
        if ex.expectContinue && inStart == inEnd {
            HTTPWriter.appendRaw("HTTP/1.1 100 Continue\r\n\r\n", to: &out)
        }
        ex.bodyDeadline = worker.loop.now &+ worker.seconds(worker.config.timeouts.clientBodyTotal)
        armBodyTimer(ex)
        bufferBody(ex)
        guard phase != .closed, exchange === ex else { return }
        if outStart < out.count { flush() } else { updateInterest() }
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

    /// The body timer: the between-reads timeout, never past the body's total deadline.
    private func armBodyTimer(_ ex: Exchange) {
        timer = .body
        let idle = worker.loop.now &+ worker.seconds(worker.config.timeouts.clientBodyIdle)
        timerDeadline = ex.bodyDeadline != 0 && ex.bodyDeadline < idle ? ex.bodyDeadline : idle
    }

    /// Moves what has arrived of the body into the staged copy; once complete, goes on with `bodyRead`.
    func bufferBody(_ ex: Exchange) {
        guard inStart < inEnd || ex.requestDone else { return }
        if case .failed(let error, let reason) = moveBody(ex, sink: &ex.stagedBody) {
            ex.buffering = false
            failRequest(ex, error, reason: reason)
            return
        }
        // Every staged byte counts against the worker's budget, so many slow bodies cannot exhaust memory.
        let added = ex.stagedBody.count - ex.bufferCharge
        if added > 0 {
            guard worker.bodyBudget.charge(added, owner: bufferOwner(ex), total: worker.bodyBufferBudget) else {
                ex.buffering = false
                failRequest(ex, bufferFull(), reason: .rejected)
                return
            }
            ex.bufferCharge += added
        }
        guard ex.requestDone else {
            armBodyTimer(ex)
            return
        }
        ex.buffering = false
        ex.wholeBody = true
        timer = .none
        timerDeadline = 0
        bodyRead(ex)
    }

    /// The body is complete (or streams: blob uploads and everything else on a single upstream): the model gate on
    /// what was read, then a slot and the upstream.
    private func bodyRead(_ ex: Exchange) {
        if ex.bodyNamesModel {
            if let refusal = modelGate(ex) {
                respond(ex, refusal, reason: .rejected)
                return
            }
        }
        if ex.wholeBody && ex.isChunked {
            // Staged raw: framed again as one chunk, since the upstream head says chunked.
            var framed: [UInt8] = []
            framed.reserveCapacity(ex.stagedBody.count + 16)
            if !ex.stagedBody.isEmpty {
                HTTPWriter.appendChunkHeader(size: ex.stagedBody.count, to: &framed)
                framed.append(contentsOf: ex.stagedBody)
                framed.append(contentsOf: HTTPWriter.crlf)
            }
            framed.append(contentsOf: HTTPWriter.lastChunk)
            ex.stagedBody = framed
        }
        proceedToSlot(ex)
    }

    /// Every reading Ollama makes of the model in a complete body must pass: the allow-list, and cloud models
    /// (forwarded by Ollama to ollama.com on the owner's account) only for whom `cloud-models` allows. Returns the
    /// refusal, or nil with `ex.model` set to the model the handler will act on.
    private func modelGate(_ ex: Exchange) -> ErrorResponse? {
        let config = worker.config
        let gateNeeded = ex.route == .inference && !config.modelAllowlist.isEmpty
        guard !ex.stagedBody.isEmpty else {
            // No body: nothing for Ollama to act on (it answers 400 itself), unless the allow-list needs a model.
            return gateNeeded ? ErrorResponse(status: 400, message: "the body names no \"model\" (this server checks the model of every inference request)") : nil
        }
        let reading: BodyModel
        switch BodyModel.read(ex.stagedBody) {
        case .success(let r): reading = r
        case .failure(let invalid):
            return ErrorResponse(status: 400, message: "\(invalid.reason) (this server reads the model of every inference request as Ollama does)")
        }
        if reading.handler == .notString || reading.exactKey == .notString {
            return ErrorResponse(status: 400, message: "\"model\" must be a string")
        }
        if case .string(let name) = reading.handler { ex.model = name }
        var names = reading.names
        // /api/show also accepts the deprecated "name" for its model; it is read as Ollama reads it below.
        if isShow(ex), case .success(let alt) = BodyModel.read(ex.stagedBody, key: "name"), case .string(let n) = alt.handler {
            if ex.model == nil || ex.model == "" { ex.model = n }
            if !names.contains(n) { names.append(n) }
        }
        if gateNeeded {
            guard !names.isEmpty else {
                return ErrorResponse(status: 400, message: "the body names no \"model\" (this server checks the model of every inference request)")
            }
            for name in names where !config.modelAllowlist.contains(name) {
                return ErrorResponse(status: 403, message: "model \"\(name)\" is not available on this server")
            }
        }
        for name in names {
            if let refusal = cloudRefusal(name, ex) { return refusal }
        }
        return nil
    }

    /// 403 when `name` is a cloud model and `cloud-models` does not allow it to this exchange's user.
    private func cloudRefusal(_ name: String, _ ex: Exchange) -> ErrorResponse? {
        guard CloudModel.isCloud(name) else { return nil }
        let config = worker.config
        let isAdmin = ex.user.map { config.admins.contains($0) } ?? false
        switch config.cloudModels {
        case .all: return nil
        case .admins where isAdmin || config.users == nil: return nil
        default:
            return ErrorResponse(status: 403, message: "model \"\(name)\" runs on ollama.com on this server's account, which this server does not allow\(config.cloudModels == .admins ? " for non-administrators" : "")")
        }
    }

    /// An inference slot (or none needed), then the upstream.
    func proceedToSlot(_ ex: Exchange) {
        switch acquireSlot(ex) {
        case .proceed: proxy(ex)
        case .wait: updateInterest()
        case .reject(let error, let reason): respond(ex, error, reason: reason)
        }
    }

    /// Connects (or reuses a pooled connection) and queues the prepared head and whatever body is here already.
    /// With several backends, `proxyToBackends` chooses one first.
    func proxy(_ ex: Exchange) {
        if worker.backends != nil {
            proxyToBackends(ex)
            return
        }
        let up: UpstreamConnection
        if let pooled = worker.takeIdleUpstream() {
            up = pooled
            up.reused = true
        } else {
            switch UpstreamConnection.open(worker: worker) {
            case .success(let fresh): up = fresh
            case .failure:
                respond(ex, .badGateway("cannot connect to \(worker.config.upstream.hostHeader)"), reason: .upstreamRefused)
                return
            }
        }
        ex.upstream = up
        ex.upstreamStart = worker.loop.now
        if up.out.isEmpty {
            swap(&up.out, &ex.upstreamHead)
            worker.recycleOutput(&ex.upstreamHead)
        } else {
            up.out.append(contentsOf: ex.upstreamHead)
            worker.recycleOutput(&ex.upstreamHead)
        }
        if ex.wholeBody {
            up.out.append(contentsOf: ex.stagedBody)
            ex.stagedBody = []
        }
        if !ex.requestDone && ex.expectContinue && inStart == inEnd {
            HTTPWriter.appendRaw("HTTP/1.1 100 Continue\r\n\r\n", to: &out)
        }
        if !ex.requestDone && inStart < inEnd {
            moveBody(ex, into: up)
        }
        if up.reused && ex.requestDone && up.outStart == 0 { ex.replay = up.out }
        if !ex.requestDone {
            timer = .body
            timerDeadline = worker.loop.now &+ worker.seconds(worker.config.timeouts.clientBodyIdle)
        }
        up.attach(self)
        if !up.isConnecting && !up.flush() {
            upstreamFailed(up, reason: .upstreamClosed, detail: "write failed")
            return
        }
        if outStart < out.count { flush() } else { updateInterest() }
    }

    /// Moves buffered body bytes to the upstream, then flushes it.
    func pumpRequestBody(_ ex: Exchange) {
        guard let up = ex.upstream else {
            if ex.buffering { bufferBody(ex) }
            return
        }
        moveBody(ex, into: up)
        guard phase == .exchange, exchange === ex else { return }
        timerDeadline = ex.requestDone ? 0 : worker.loop.now &+ worker.seconds(worker.config.timeouts.clientBodyIdle)
        if ex.requestDone { timer = .none }
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
    private func moveBody(_ ex: Exchange, into up: UpstreamConnection) {
        var sink: [UInt8] = []
        swap(&sink, &up.out)
        let verdict = moveBody(ex, sink: &sink)
        swap(&sink, &up.out)
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
            let n = min(remaining, inEnd - inStart)
            sink.append(contentsOf: input[inStart..<inStart + n])
            inStart += n
            ex.bytesIn += n
            ex.bodyBytes += n
            ex.body = .length(remaining: remaining - n)
            if remaining - n == 0 { ex.requestDone = true }
        case .chunked:
            var data = 0
            let consumed: Int
            let raw = ex.buffering
            do {
                consumed = try ex.bodyDecoder.decode(input, from: inStart, to: inEnd) { range in
                    data += range.count
                    guard !range.isEmpty else { return }
                    if raw {
                        sink.append(contentsOf: input[range])
                        return
                    }
                    HTTPWriter.appendChunkHeader(size: range.count, to: &sink)
                    sink.append(contentsOf: input[range])
                    sink.append(contentsOf: HTTPWriter.crlf)
                }
            } catch {
                inStart = inEnd
                return .failed(ErrorResponse.fromParse(error), .badRequest)
            }
            inStart += consumed
            ex.bytesIn += consumed
            ex.bodyBytes += data
            if ex.bodyLimit > 0 && ex.bodyBytes > ex.bodyLimit {
                inStart = inEnd
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

    /// The redirect listener's only answer: 301 to the same host and path over https.
    private func redirect(_ ex: Exchange, head: RequestHead) {
        var host = head.host.map { String(decoding: input[$0], as: UTF8.self) } ?? "localhost"
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = String(host[..<colon]) }
        let port = worker.redirectPort
        let location = "https://\(host)\(port == 443 ? "" : ":\(port)")\(String(decoding: input[head.path.lowerBound..<head.target.upperBound], as: UTF8.self))"
        answer(ex, status: 301, headers: [("Location", location)], body: "", contentType: "text/plain", close: true,
               reason: .completed)
    }

    /// Ends the exchange: logs it, then either waits for the next request (keep-alive, pipelining) or closes
    /// once everything is written.
    func finishExchange(_ ex: Exchange, reason: CloseReason) {
        releaseAdmission(ex)
        logExchange(ex, reason: reason, status: ex.status)
        if ex.upstreamHead.capacity > 0 { worker.recycleOutput(&ex.upstreamHead) }
        exchange = nil
        let keep = ex.clientKeepAlive && ex.requestDone && !ex.closeAfter && !worker.draining
        if keep {
            phase = .waitingHead
            timer = .keepAlive
            timerDeadline = worker.loop.now &+ worker.seconds(worker.config.timeouts.keepAliveIdle)
            if inStart == inEnd { worker.recycleInput(&input) }
            if inStart < inEnd {
                // A pipelined request is already here.
                worker.loop.deferUntilIterationEnd { [self] in
                    if phase == .waitingHead && exchange == nil { processInput(); readAvailable() }
                }
            }
        } else {
            phase = .waitingHead
            closeAfterFlush = true
            // Linger only when the client may still be sending (an unread body or pipelined bytes), as nginx does.
            lingerNeeded = !ex.requestDone || inStart < inEnd
            inStart = inEnd
        }
        flush()
    }
}
