import TollgateHTTP
import TollgateIO

extension ClientConnection {
    /// A complete head is in `worker.scratchHead`: write the upstream head at once (the scratch head is reused by
    /// the next parse, and an exchange may wait for a password check or a slot), then run the phases in nginx's
    /// order: read head → rate limit → authenticate → route policy → proxy → log.
    func startExchange() {
        let head = worker.scratchHead
        let family = APIFamily.of(path: input, head.path)
        let route = RouteClass.of(input, path: head.path)
        let ex = Exchange(requestID: worker.nextRequestID(), head: head, buffer: input, family: family, route: route,
                          bodyLimit: route.bodyLimit(worker.config.bodyLimits), start: worker.loop.now)
        if worker.draining { ex.clientKeepAlive = false }
        if !worker.config.trustedProxies.isEmpty {
            let client = clientHost(head)
            if client != peerHost { ex.client = client }
        }
        let clientText = ex.client.map { Array(SocketAddress(host: $0, port: 0).hostString.utf8) } ?? peerText
        ex.upstreamHead = worker.takeOutput()
        RequestRewriter.write(head, buffer: input, upstreamHost: worker.upstreamHost, clientAddress: clientText,
                              scheme: scheme, requestID: ex.requestID, into: &ex.upstreamHead)
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

    /// Authentication passed (or is off): the route policy, the user's rate, an inference slot, then the upstream.
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
        if !worker.config.modelAllowlist.isEmpty && ex.route == .inference {
            // The body streams to Ollama as usual, but its end is held back until the model is known.
            if ex.requestDone {
                respond(ex, ErrorResponse(status: 400, message: "the body names no \"model\" (this server checks the model of every inference request)"), reason: .rejected)
                return
            }
            ex.modelGate = ModelGate()
        }
        proceedToSlot(ex)
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

    /// Copies body bytes from the client buffer to `sink` (an upstream's output, or the exchange's staged body),
    /// re-framing chunked bodies cleanly (no extensions, no trailers) and enforcing the route's body limit.
    func moveBody(_ ex: Exchange, sink: inout [UInt8]) -> BodyVerdict {
        switch ex.body {
        case .none:
            ex.requestDone = true
        case .length(let remaining):
            let n = min(remaining, inEnd - inStart)
            ex.requestScanner?.feed(input, inStart..<inStart + n)
            if ex.routingGate != nil { _ = ex.routingGate!.feed(input, inStart..<inStart + n) }
            let forward = ex.modelGate == nil ? n : ex.modelGate!.feed(input, inStart..<inStart + n)
            sink.append(contentsOf: input[inStart..<inStart + forward])
            inStart += n
            ex.bytesIn += n
            ex.body = .length(remaining: remaining - n)
            if remaining - n == 0 {
                if ex.modelGate != nil, let refusal = passModelGate(ex, &sink) { return .failed(refusal, .rejected) }
                ex.requestDone = true
            }
        case .chunked:
            var data = 0
            let consumed: Int
            do {
                consumed = try ex.bodyDecoder.decode(input, from: inStart, to: inEnd) { range in
                    ex.requestScanner?.feed(input, range)
                    if ex.routingGate != nil { _ = ex.routingGate!.feed(input, range) }
                    data += range.count
                    let forward = ex.modelGate == nil ? range.count : ex.modelGate!.feed(input, range)
                    guard forward > 0 else { return }
                    HTTPWriter.appendChunkHeader(size: forward, to: &sink)
                    sink.append(contentsOf: input[range.lowerBound..<range.lowerBound + forward])
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
                if ex.modelGate != nil {
                    let tail = ex.modelGate!.held
                    if let refusal = passModelGate(ex, &sink) { return .failed(refusal, .rejected) }
                    if !tail.isEmpty {
                        // The held tail was appended raw by passModelGate; frame it as a chunk instead.
                        sink.removeLast(tail.count)
                        HTTPWriter.appendChunkHeader(size: tail.count, to: &sink)
                        sink.append(contentsOf: tail)
                        sink.append(contentsOf: HTTPWriter.crlf)
                    }
                }
                sink.append(contentsOf: HTTPWriter.lastChunk)
                ex.requestDone = true
            }
        }
        return .moved
    }

    /// The whole body has been read: the model gate's verdict. Allowed: the held tail goes to `sink` (raw; the
    /// chunked caller re-frames it) and nil is returned. Refused: the error for the client (403 or 400 in its API
    /// family's shape); the caller abandons the upstream request before Ollama could decode it.
    private func passModelGate(_ ex: Exchange, _ sink: inout [UInt8]) -> ErrorResponse? {
        guard let gate = ex.modelGate else { return nil }
        ex.modelGate = nil
        let error: ErrorResponse
        switch gate.finish() {
        case .model(let model) where worker.config.modelAllowlist.contains(model):
            sink.append(contentsOf: gate.held)
            return nil
        case .model(let model):
            error = ErrorResponse(status: 403, message: "model \"\(model)\" is not available on this server")
        case .invalid(let why):
            error = ErrorResponse(status: 400, message: "\(why) (this server checks the model of every inference request)")
        }
        ex.requestDone = true
        return error
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
