import TollgateHTTP
import TollgateIO

extension ClientConnection {
    /// The upstream accepted the connection: send what is queued.
    func upstreamConnected(_ up: UpstreamConnection) {
        guard let ex = exchange, ex.upstream === up else { up.close(); return }
        if !up.flush() {
            upstreamFailed(up, reason: .upstreamClosed, detail: "write failed")
            return
        }
        updateInterest()
    }

    /// Readiness on the exchange's upstream socket.
    func upstreamReady(_ up: UpstreamConnection, _ events: ReadyEvents) {
        guard let ex = exchange, ex.upstream === up else { up.close(); return }
        if events.contains(.writable) {
            if !up.flush() {
                upstreamFailed(up, reason: .upstreamClosed, detail: "write failed")
                return
            }
            // The upstream drained what we queued: the client may send more body.
            if !ex.requestDone { readAvailable() }
            guard exchange === ex else { return }
        }
        if events.contains(.readable) || events.contains(.peerClosed) || events.contains(.error) {
            relayResponse(ex, up)
        }
    }

    /// Reads from the upstream and relays every read to the client at once, until the client's backlog reaches the
    /// backpressure bound (then reading pauses until it drains).
    private func relayResponse(_ ex: Exchange, _ up: UpstreamConnection) {
        while exchange === ex && ex.upstream === up {
            if pendingOutput >= worker.config.backpressureBytes {
                up.pause()
                break
            }
            switch up.readOnce() {
            case .bytes:
                let drained = up.drained
                consumeUpstream(ex, up)
                // A short read emptied the socket; epoll says when more comes (no read just for EAGAIN).
                if drained {
                    if !life.isClosed { flush() }
                    return
                }
            case .wouldBlock:
                flush()
                return
            case .eof:
                upstreamEnded(ex, up)
                return
            case .failed(let e):
                upstreamBroke(ex, up, detail: Syscall.describe(e))
                return
            }
        }
        if !life.isClosed { flush() }
    }

    /// Parses the response head if needed, then moves body bytes from the upstream buffer to the client's.
    private func consumeUpstream(_ ex: Exchange, _ up: UpstreamConnection) {
        if !ex.headSent {
            while true {
                switch worker.responseParser.parse(up.input.bytes, from: up.unread.lowerBound, to: up.unread.upperBound, requestWasHead: ex.isHead,
                                                   into: &worker.scratchResponse) {
                case .needMore:
                    return
                case .invalid(let e):
                    upstreamInvalid(ex, up, detail: e.reason)
                    return
                case .complete:
                    break
                }
                let head = worker.scratchResponse
                ex.responseHeadLength = head.headLength
                ex.responseKeepAlive = head.keepAlive
                if head.status >= 100 && head.status < 200 {
                    // Interim responses (we never forward Expect, so these are unexpected): skip them. The
                    // backend has the request, so it is never sent again.
                    up.consume(head.headLength)
                    peerResponding(ex)
                    continue
                }
                ex.status = head.status
                ex.upstreamAnswered = true
                ex.firstByteAt = worker.loop.now
                ex.mode = ResponseRewriter.bodyMode(head.framing, clientVersion: ex.version)
                if case .length(let n) = ex.mode { ex.remaining = n }
                let delimitedByClose = ex.mode == .dechunkToClose || ex.mode == .untilClose
                ex.closeAfter = ex.closeAfter || !ex.requestDone || !ex.clientKeepAlive || worker.draining || delimitedByClose
                // The response goes into a pooled buffer with room, not one grown append by append.
                if out.capacity == 0 { out = worker.takeOutput() }
                let before = out.count
                // The usage Tollgate asked for leaves the event stream; Ollama streams chunked, and a stream with
                // a Content-Length, whose length then changes, goes chunked (or, to HTTP/1.0, until the close).
                var headMode = ex.mode
                let filterable = head.status == 200 && ex.mode != .length(0)
                if ex.usageInjected && filterable && ResponseRewriter.isEventStream(head, buffer: up.input.bytes) {
                    ex.usageFilter = SSEUsageFilter()
                    if case .length = ex.mode {
                        headMode = ex.version == .http11 ? .chunkedPassthrough : .untilClose
                        if ex.version != .http11 { ex.closeAfter = true }
                    }
                }
                // A model list for an exchange that may not name every model is written with only those it may
                // (`ModelListFilter`): the head is held until the list is whole, then sent with the narrowed
                // list's length. A HEAD answer, with no list to narrow, leaves out the whole list's length.
                var holdHead = false
                // Any success is narrowed (a list is a list whatever 2xx it comes with); errors pass as they are.
                if let permit = ex.modelPermit, head.status >= 200 && head.status < 300 && ex.mode != .length(0) {
                    if HTTPBytes.declaresEncoding(head.headers, up.input.bytes) {
                        upstreamInvalid(ex, up, detail: "a model list with a Content-Encoding, which this server filters and cannot read")
                        return
                    }
                    headMode = .untilClose  // no framing field
                    if ex.mode != .none {
                        ex.listFilter = ModelListFilter(permit: permit, openAI: ex.path == "/v1/models")
                        holdHead = true
                    }
                }
                ResponseRewriter.write(head, buffer: up.input.bytes, mode: headMode, requestID: ex.requestID,
                                       close: ex.closeAfter, corsOrigin: ex.corsOrigin,
                                       corsCredentials: corsCredentials(ex), hsts: hstsLine,
                                       extraHeaders: ex.responseHeaders, into: &out)
                if holdHead {
                    ex.heldHead = Array(out[before...])
                    out.removeSubrange(before...)
                }
                ex.bytesOut += out.count - before
                up.consume(head.headLength)
                ex.headSent = true
                peerAnswered(ex)
                break
            }
            if ex.mode == .none || ex.mode == .length(0) {
                responseComplete(ex, up)
                return
            }
        }
        relayBody(ex, up)
    }

    private func relayBody(_ ex: Exchange, _ up: UpstreamConnection) {
        let start = up.unread.lowerBound, end = up.unread.upperBound
        guard start < end else { return }
        if ex.usageFilter != nil || ex.listFilter != nil {
            relayFiltered(ex, up)
            return
        }
        let before = out.count
        switch ex.mode {
        case .none:
            return
        case .length:
            let n = min(ex.remaining, end - start)
            ex.responseScanner?.feed(up.input.bytes, start..<start + n)
            out.append(contentsOf: up.input.bytes[start..<start + n])
            up.consume(n)
            ex.remaining -= n
            ex.bytesOut += out.count - before
            if ex.remaining == 0 { responseComplete(ex, up) }
        case .chunkedPassthrough, .dechunkToClose:
            let consumed: Int
            do {
                if ex.mode == .chunkedPassthrough {
                    // The upstream's framing as it came, without its trailer fields (`ChunkedDecoder.relay`).
                    consumed = try ex.responseDecoder.relay(up.input.bytes, from: start, to: end, into: &out) { range in
                        ex.responseScanner?.feed(up.input.bytes, range)
                    }
                } else {
                    consumed = try ex.responseDecoder.decode(up.input.bytes, from: start, to: end) { range in
                        ex.responseScanner?.feed(up.input.bytes, range)
                        out.append(contentsOf: up.input.bytes[range])
                    }
                }
            } catch {
                upstreamInvalid(ex, up, detail: error.reason)
                return
            }
            up.consume(consumed)
            ex.bytesOut += out.count - before
            if ex.responseDecoder.isDone { responseComplete(ex, up) }
        case .rechunk:
            ex.responseScanner?.feed(up.input.bytes, start..<end)
            HTTPWriter.appendChunkHeader(size: end - start, to: &out)
            out.append(contentsOf: up.input.bytes[start..<end])
            HTTPWriter.appendCRLF(to: &out)
            up.consume(end - start)
            ex.bytesOut += out.count - before
        case .untilClose:
            ex.responseScanner?.feed(up.input.bytes, start..<end)
            out.append(contentsOf: up.input.bytes[start..<end])
            up.consume(end - start)
            ex.bytesOut += out.count - before
        }
    }

    /// `relayBody` for a stream whose injected usage is removed (`SSEUsageFilter`): the data is decoded, filtered,
    /// and framed again for the client, a chunk for each upstream chunk (or read) that leaves something, so the
    /// framing is the upstream's wherever nothing was removed (a Content-Length stream goes chunked, see
    /// `consumeUpstream`).
    private func relayFiltered(_ ex: Exchange, _ up: UpstreamConnection) {
        let start = up.unread.lowerBound, end = up.unread.upperBound
        let before = out.count
        let chunked: Bool
        if ex.listFilter != nil {
            chunked = false  // written whole, with its length (`finishList`)
        } else if case .length = ex.mode {
            chunked = ex.version == .http11
        } else {
            chunked = ex.mode == .chunkedPassthrough || ex.mode == .rechunk
        }
        var piece: [UInt8] = []
        func emit() {
            guard !piece.isEmpty else { return }
            if chunked { HTTPWriter.appendChunkHeader(size: piece.count, to: &out) }
            out.append(contentsOf: piece)
            if chunked { HTTPWriter.appendCRLF(to: &out) }
            piece.removeAll(keepingCapacity: true)
        }
        var finished = false
        switch ex.mode {
        case .chunkedPassthrough, .dechunkToClose:
            let consumed: Int
            do {
                consumed = try ex.responseDecoder.decode(up.input.bytes, from: start, to: end) { range in
                    ex.responseScanner?.feed(up.input.bytes, range)
                    ex.usageFilter?.feed(up.input.bytes, range, into: &piece)
                    ex.listFilter?.feed(up.input.bytes, range)
                    emit()
                }
            } catch {
                upstreamInvalid(ex, up, detail: error.reason)
                return
            }
            up.consume(consumed)
            finished = ex.responseDecoder.isDone
            if finished { ex.usageFilter?.finish(into: &piece) }
        case .length:
            let n = min(ex.remaining, end - start)
            ex.responseScanner?.feed(up.input.bytes, start..<start + n)
            ex.usageFilter?.feed(up.input.bytes, start..<start + n, into: &piece)
            ex.listFilter?.feed(up.input.bytes, start..<start + n)
            up.consume(n)
            ex.remaining -= n
            finished = ex.remaining == 0
            if finished { ex.usageFilter?.finish(into: &piece) }
        default:
            ex.responseScanner?.feed(up.input.bytes, start..<end)
            ex.usageFilter?.feed(up.input.bytes, start..<end, into: &piece)
            ex.listFilter?.feed(up.input.bytes, start..<end)
            up.consume(end - start)
        }
        emit()
        if finished && chunked { out.append(contentsOf: HTTPWriter.lastChunk) }
        ex.bytesOut += out.count - before
        if finished, ex.listFilter != nil, let refusal = finishList(ex) {
            upstreamInvalid(ex, up, detail: refusal.reason)
            return
        }
        if finished { responseComplete(ex, up) }
    }

    /// A close-delimited stream ended: what the usage filter still holds goes out, or the narrowed model list
    /// (as a chunk when rechunking); the reason when the list cannot be sent.
    private func flushFilter(_ ex: Exchange) -> ModelListFilter.Refusal? {
        var piece: [UInt8] = []
        if var filter = ex.usageFilter {
            filter.finish(into: &piece)
            ex.usageFilter = filter
        }
        if ex.listFilter != nil { return finishList(ex) }
        guard !piece.isEmpty else { return nil }
        let before = out.count
        if ex.mode == .rechunk { HTTPWriter.appendChunkHeader(size: piece.count, to: &out) }
        out.append(contentsOf: piece)
        if ex.mode == .rechunk { HTTPWriter.appendCRLF(to: &out) }
        ex.bytesOut += out.count - before
        return nil
    }

    /// The model list has all arrived: the held head goes out with the narrowed list's length, then the list;
    /// the reason when the list cannot be sent (nothing was).
    private func finishList(_ ex: Exchange) -> ModelListFilter.Refusal? {
        guard let list = ex.listFilter, let held = ex.heldHead else { return nil }
        ex.listFilter = nil
        switch list.finish() {
        case .failure(let refusal):
            return refusal
        case .success(let body):
            ex.heldHead = nil
            let before = out.count
            // The held head ends with its blank line: the length goes before it.
            out.append(contentsOf: held[..<(held.count - 2)])
            HTTPWriter.appendRaw("Content-Length: ", to: &out)
            HTTPWriter.appendDecimal(body.count, to: &out)
            HTTPWriter.appendCRLF(to: &out)
            HTTPWriter.appendCRLF(to: &out)
            out.append(contentsOf: body)
            ex.bytesOut += out.count - before
            return nil
        }
    }

    /// The response is complete: the upstream goes back to the pool if it can be reused.
    private func responseComplete(_ ex: Exchange, _ up: UpstreamConnection) {
        ex.upstream = nil
        up.release(keepAlive: ex.responseKeepAlive && ex.requestDone)
        finishExchange(ex, reason: .completed)
    }

    /// The upstream closed its side.
    private func upstreamEnded(_ ex: Exchange, _ up: UpstreamConnection) {
        if !ex.headSent {
            if ex.responseHeadLength == 0 && resendStale(ex, up) { return }
            upstreamFailed(up, reason: .upstreamClosed, detail: "the upstream closed the connection before answering")
            return
        }
        if ex.mode == .rechunk || ex.mode == .untilClose {
            let list = ex.listFilter != nil
            if let refusal = flushFilter(ex) {
                upstreamInvalid(ex, up, detail: refusal.reason)
                return
            }
            if list {
                // The list went out whole, with its length.
                ex.upstream = nil
                up.close()
                finishExchange(ex, reason: .completed)
                return
            }
        }
        switch ex.mode {
        case .rechunk:
            ex.upstream = nil
            up.close()
            out.append(contentsOf: HTTPWriter.lastChunk)
            ex.bytesOut += HTTPWriter.lastChunk.count
            finishExchange(ex, reason: .completed)
        case .untilClose:
            ex.upstream = nil
            up.close()
            finishExchange(ex, reason: .completed)
        default:
            truncate(ex, up, reason: .upstreamClosed)
        }
    }

    private func upstreamBroke(_ ex: Exchange, _ up: UpstreamConnection, detail: String) {
        if !ex.headSent {
            if resendStale(ex, up) { return }
            upstreamFailed(up, reason: .upstreamClosed, detail: detail)
        } else {
            truncate(ex, up, reason: .upstreamClosed)
        }
    }

    private func upstreamInvalid(_ ex: Exchange, _ up: UpstreamConnection, detail: String) {
        if ex.headSent {
            truncate(ex, up, reason: .upstreamInvalid, detail: "invalid response from the upstream (\(detail))")
        } else {
            answerUpstreamError(ex, .badGateway("invalid response from the upstream (\(detail))"),
                                upstream: "upstream \(worker.config.upstreams[up.backend].address.hostHeader)",
                                reason: .upstreamInvalid)
        }
    }

    /// Connecting or writing failed, or the upstream closed before answering: 502, or a truncated stream if the
    /// response had begun.
    func upstreamFailed(_ up: UpstreamConnection, reason: CloseReason, detail: String) {
        guard let ex = exchange, ex.upstream === up else { up.close(); return }
        if ex.headSent {
            truncate(ex, up, reason: reason)
            return
        }
        if resendStale(ex, up) || failOver(ex, up, detail: detail) { return }
        let error: ErrorResponse = reason == .upstreamTimeout ? .gatewayTimeout(detail) : .badGateway(detail)
        answerUpstreamError(ex, error, upstream: "upstream \(worker.config.upstreams[up.backend].address.hostHeader)",
                            reason: reason)
    }

    /// Answers a 502 or 504 for a failed upstream. The body says what went wrong but not where: the upstream's
    /// address is internal, so only the error log names it (`upstream`: "upstream HOST:PORT", as nginx's error log
    /// does), with the request id that finds the access-log line.
    func answerUpstreamError(_ ex: Exchange, _ error: ErrorResponse, upstream: String, reason: CloseReason) {
        Diagnostics.warn("\(error.message) (\(upstream), request \(ex.requestID.text), "
                         + "client \(String(decoding: peerText, as: UTF8.self)))")
        respond(ex, error, reason: reason)
    }

    /// The upstream said nothing for the idle timeout: 504 before the response began, else a truncated stream.
    func upstreamTimedOut(_ up: UpstreamConnection) {
        guard let ex = exchange, ex.upstream === up else { up.close(); return }
        if ex.headSent {
            truncate(ex, up, reason: .upstreamTimeout)
        } else {
            respond(ex, .gatewayTimeout("no response within \(seconds(worker.config.timeouts.upstreamIdle))"), reason: .upstreamTimeout)
        }
    }

    /// The response cannot be completed: deliver what arrived, then close without a terminating chunk so the
    /// client sees a truncated response, never a falsely complete one.
    private func truncate(_ ex: Exchange, _ up: UpstreamConnection, reason: CloseReason, detail: String? = nil) {
        if ex.heldHead != nil {
            // Nothing of the response went out (a model list is held whole): the client gets the error instead.
            ex.heldHead = nil
            ex.listFilter = nil
            ex.upstream = nil
            up.close()
            let what = detail ?? "the upstream's model list did not arrive whole"
            answerUpstreamError(ex, reason == .upstreamTimeout ? .gatewayTimeout(what) : .badGateway(what),
                                upstream: "upstream \(worker.config.upstreams[up.backend].address.hostHeader)",
                                reason: reason)
            return
        }
        ex.upstream = nil
        up.close()
        ex.closeAfter = true
        ex.clientKeepAlive = false
        releaseAdmission(ex)
        logExchange(ex, reason: reason, status: ex.status)
        exchange = nil
        life.exchangeTruncated(requestDone: ex.requestDone)
        input.consumeAll()
        flush()
    }
}
