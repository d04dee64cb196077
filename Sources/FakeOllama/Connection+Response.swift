import Glibc

/// Writing responses: fixed bodies, refused requests, and streams paced by interval, step mode and faults.
extension Connection {
    /// Appends a status line and headers shaped like Go's net/http: the handler's headers sorted by name, then
    /// `Date`, `Content-Length`, `Connection`, `Transfer-Encoding` (the order of Go's `extraHeader.Write`).
    func appendHead(status: Int, headers: [(String, String)], contentLength: Int?, chunked: Bool,
                    connection: String?) {
        append("HTTP/1.1 \(status) \(reasonPhrase(status))\r\n")
        var headers = headers
        if let backend = server.config.name { headers.append(("X-Backend", backend)) }
        for (name, value) in headers.sorted(by: { $0.0 < $1.0 }) {
            append(name)
            append(": ")
            append(value)
            append("\r\n")
        }
        append("Date: ")
        output.append(contentsOf: date.current())
        append("\r\n")
        if let contentLength {
            append("Content-Length: \(contentLength)\r\n")
        }
        if let connection { append("Connection: \(connection)\r\n") }
        if chunked { append("Transfer-Encoding: chunked\r\n") }
        append("\r\n")
    }

    private func append(_ s: String) {
        var s = s
        s.withUTF8 { output.append(contentsOf: $0) }
    }

    /// Sends a complete response; returns whether to keep the connection.
    func sendFixed(status: Int, headers: [(String, String)], body: [UInt8], request: Request) -> Bool {
        output.removeAll(keepingCapacity: true)
        let keep = request.keepAlive
        let connectionHeader: String? = !keep ? (request.minorVersion == 1 ? "close" : nil)
            : (request.minorVersion == 0 ? "keep-alive" : nil)
        let noBody = status == 204 || status == 304
        appendHead(status: status, headers: headers, contentLength: noBody ? nil : body.count, chunked: false,
                   connection: connectionHeader)
        if !request.isHead && !noBody { output.append(contentsOf: body) }
        return Sock.writeAll(fd, output) && keep
    }

    /// Answers a request that could not be parsed or framed, as Go's server does, and the caller closes.
    func sendRequestError(_ error: RequestError) {
        output.removeAll(keepingCapacity: true)
        append("HTTP/1.1 \(error.status) \(reasonPhrase(error.status))\r\n")
        append("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")
        append(error.body)
        _ = Sock.writeAll(fd, output)
    }

    /// Streams `lines` lines, each flushed as its own chunk (HTTP/1.0: raw, then close); returns whether to keep
    /// the connection. Counts a cancellation when the client leaves before the last line was written.
    /// `fault` is the one the request arrived under (see `FakeOllamaServer.record`).
    func sendStream(headers: [(String, String)], lines: Int, flushing: StreamFlushing = .perLine, request: Request,
                    fault: FakeOllamaServer.Fault, makeLine: (Int, inout [UInt8]) -> Void) -> Bool {
        let chunked = request.minorVersion == 1
        var dieAfter: Int?
        if case .dieAfterLines(let k) = fault { dieAfter = max(0, k) }
        let connectionHeader: String? = chunked && !request.keepAlive ? "close" : nil
        var headSent = false
        let intervalNanos = UInt64(max(0, server.config.intervalMs)) * 1_000_000
        let startTime = Clock.nowNanos()

        for i in 0..<lines {
            if let k = dieAfter, i >= k { break }
            switch waitBeforeLine(i, deadline: startTime + UInt64(i) * intervalNanos) {
            case .go:
                break
            case .clientGone:
                server.countCancellation()
                return false
            case .stopping:
                return false
            }
            output.removeAll(keepingCapacity: true)
            if !headSent {
                appendHead(status: 200, headers: headers, contentLength: nil, chunked: chunked,
                           connection: connectionHeader)
                headSent = true
            }
            line.removeAll(keepingCapacity: true)
            makeLine(i, &line)
            if chunked {
                for range in flushing.chunks(of: line) {
                    append(String(range.count, radix: 16))
                    append("\r\n")
                    output.append(contentsOf: line[range])
                    append("\r\n")
                }
                if i == lines - 1 && dieAfter == nil { append("0\r\n\r\n") }
            } else {
                output.append(contentsOf: line)
            }
            if !Sock.writeAll(fd, output) {
                server.countCancellation()
                return false
            }
        }
        if dieAfter != nil {
            // The fault: end the stream without its terminating zero chunk.
            if !headSent {
                output.removeAll(keepingCapacity: true)
                appendHead(status: 200, headers: headers, contentLength: nil, chunked: chunked,
                           connection: connectionHeader)
                _ = Sock.writeAll(fd, output)
            }
            _ = Glibc.shutdown(fd, Int32(SHUT_WR))
            return false
        }
        if lines == 0 {
            output.removeAll(keepingCapacity: true)
            appendHead(status: 200, headers: headers, contentLength: chunked ? nil : 0,
                       chunked: chunked, connection: connectionHeader)
            if chunked { append("0\r\n\r\n") }
            if !Sock.writeAll(fd, output) { return false }
        }
        return chunked && request.keepAlive
    }

    /// Whether the next line may go out.
    enum LineWait { case go, clientGone, stopping }

    /// Waits for line `i`'s turn: a step-mode grant, or `deadline` (lines after the first) when pacing.
    /// Meanwhile polls the socket so a client that leaves is noticed at once, not after the pause.
    private func waitBeforeLine(_ i: Int, deadline: UInt64) -> LineWait {
        while true {
            if wakeRead < 0 && server.stepMode { (wakeRead, wakeWrite) = Wake.make() }
            switch server.takeLineGrant(connectionID: id, wakeFD: wakeWrite) {
            case .granted:
                return .go
            case .stopping:
                return .stopping
            case .wait:
                switch pollPeer(timeoutMs: -1) {
                case .gone: return server.isStopping ? .stopping : .clientGone
                case .quiet: continue
                }
            case .notStepMode:
                break
            }
            let now = Clock.nowNanos()
            if i == 0 || deadline <= now { return .go }
            let ms = Int32(min(Int64(Int32.max), Int64((deadline - now + 999_999) / 1_000_000)))
            switch pollPeer(timeoutMs: ms) {
            case .gone: return server.isStopping ? .stopping : .clientGone
            case .quiet: continue  // re-check: step mode may have been switched on meanwhile
            }
        }
    }

    private enum PeerState { case quiet, gone }

    /// Polls the client socket (and the step-mode wake pipe) for up to `timeoutMs`. Bytes the client sends meanwhile
    /// (a pipelined request) are kept in `input`; EOF, hang-up or error mean the client is gone.
    private func pollPeer(timeoutMs: Int32) -> PeerState {
        let readable = Int16(POLLIN)
        let hangUp: Int16 = PollFlags.rdHup | Int16(POLLHUP) | Int16(POLLERR) | Int16(POLLNVAL)
        var fds = [pollfd(fd: fd, events: readable | PollFlags.rdHup, revents: 0),
                   pollfd(fd: wakeRead, events: readable, revents: 0)]
        let count: nfds_t = wakeRead >= 0 ? 2 : 1
        let rc = poll(&fds, count, timeoutMs)
        if rc < 0 { return errno == EINTR ? .quiet : .gone }
        if rc == 0 { return .quiet }
        if count == 2 && fds[1].revents != 0 { Wake.drain(wakeRead) }
        let ev = fds[0].revents
        if ev & hangUp != 0 { return .gone }
        if ev & Int16(POLLIN) != 0 {
            // Keep pipelined bytes for the next request; a full buffer means a misbehaving client.
            if !fill(limit: Self.maxHeadBytes + Self.maxBodyBytes) { return .gone }
        }
        return .quiet
    }
}
