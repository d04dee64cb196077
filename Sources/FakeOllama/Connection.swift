import Glibc
import TollgateIO

/// One accepted socket, served on its own thread: read a request, answer it, repeat while keep-alive holds.
///
/// Owns `fd` (and its wake pipe) and closes them when `run` returns. Buffers are reused across requests.
final class Connection {
    let server: FakeOllamaServer
    let id: Int
    let fd: Int32
    let router: Router
    /// Input bytes live in `input[start..<end]`; they may include the start of a pipelined next request.
    var input = [UInt8](repeating: 0, count: 16 * 1024)
    var start = 0
    var end = 0
    var head = RequestHead()
    var output: [UInt8] = []
    var line: [UInt8] = []
    var date = HTTPDate()
    /// Pipe that `allowLines` writes to; created the first time this connection waits in step mode.
    var wakeRead: Int32 = -1
    var wakeWrite: Int32 = -1

    static let maxHeadBytes = 1 << 20
    static let maxBodyBytes = 64 << 20

    init(server: FakeOllamaServer, id: Int, fd: Int32) {
        self.server = server
        self.id = id
        self.fd = fd
        self.router = Router(config: server.config, checksHost: server.isLoopback)
        output.reserveCapacity(16 * 1024)
        line.reserveCapacity(1024)
    }

    /// Serves requests until the client leaves, asks to close, or the server stops; then closes the socket.
    func run() {
        while serveOne() {}
        server.unregister(id: id)
        Sock.close(fd)
        if wakeRead >= 0 {
            Sock.close(wakeRead)
            Sock.close(wakeWrite)
        }
    }

    /// Reads, records and answers one request; returns whether to keep the connection.
    private func serveOne() -> Bool {
        // 1. The head.
        while true {
            let result = RequestParser.parseHead(input, start: start, end: end, into: &head,
                                                 maxHeadBytes: Self.maxHeadBytes)
            switch result {
            case .complete:
                break
            case .needMore:
                if !fill(limit: Self.maxHeadBytes + 4096) { return false }
                continue
            case .invalid(let error):
                sendRequestError(error)
                return false
            }
            guard case .complete(let consumed) = result else { return false }
            let parsed = interpretHead()
            start += consumed
            switch parsed {
            case .failure(let error):
                sendRequestError(error)
                return false
            case .success(let (request, framing, expectContinue, recordedHead)):
                return serveBody(request, framing: framing, expectContinue: expectContinue, recordedHead: recordedHead)
            }
        }
    }

    /// How the request body is delimited.
    enum Framing { case none, length(Int), chunked }

    /// The request's head as `RecordedRequest` needs it (built only when recording is on).
    typealias RecordedHead = (method: String, target: String, version: String, headers: [(name: String, value: String)])

    /// Pulls the routing facts out of the parsed head and checks the framing rules Go's server enforces.
    private func interpretHead() -> Result<(Request, Framing, Bool, RecordedHead?), RequestError> {
        do {
            let buf = input
            func text(_ r: Range<Int>) -> String { String(decoding: buf[r], as: UTF8.self) }
            func nameIs(_ r: Range<Int>, _ lower: [UInt8]) -> Bool {
                guard r.count == lower.count else { return false }
                for (k, i) in r.enumerated() where buf[i] | 0x20 != lower[k] { return false }
                return true
            }
            var host: String?
            var hostCount = 0
            var lengths: [String] = []
            var transferEncoding: String?
            var connectionTokens = ""
            var expect = ""
            var origin: String?
            for f in head.fields {
                switch f.name.count {
                case 4 where nameIs(f.name, HeaderName.host):
                    hostCount += 1
                    host = text(f.value)
                case 6 where nameIs(f.name, HeaderName.origin):
                    origin = text(f.value)
                case 6 where nameIs(f.name, HeaderName.expect):
                    expect = text(f.value).lowercased()
                case 10 where nameIs(f.name, HeaderName.connection):
                    connectionTokens += "," + text(f.value).lowercased()
                case 14 where nameIs(f.name, HeaderName.contentLength):
                    lengths.append(text(f.value))
                case 17 where nameIs(f.name, HeaderName.transferEncoding):
                    transferEncoding = (transferEncoding.map { $0 + "," } ?? "") + text(f.value).lowercased()
                default:
                    break
                }
            }
            let minor = head.minorVersion
            if minor == 1 && hostCount == 0 { return .failure(.badRequest("missing required Host header")) }
            if hostCount > 1 { return .failure(.badRequest("too many Host headers")) }
            var framing = Framing.none
            if let te = transferEncoding {
                if minor == 0 { return .failure(.badRequest("Transfer-Encoding in an HTTP/1.0 request")) }
                if !lengths.isEmpty { return .failure(.badRequest("both Transfer-Encoding and Content-Length")) }
                guard te == "chunked" else { return .failure(.unsupportedTransferEncoding) }
                framing = .chunked
            } else if !lengths.isEmpty {
                guard lengths.count == 1, let v = lengths.first, !v.isEmpty, v.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                      v.utf8.count <= 18, let n = Int(v)
                else { return .failure(.badRequest("bad Content-Length")) }
                if n > Self.maxBodyBytes { return .failure(.bodyTooLarge) }
                if n > 0 { framing = .length(n) }
            }
            let tokens = connectionTokens.split(separator: ",").map { $0.trimmingSpaces() }
            let keepAlive = minor == 1 ? !tokens.contains("close") : tokens.contains("keep-alive")
            let target = text(head.target)
            let path = target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target
            let request = Request(method: text(head.method), path: path, minorVersion: minor, host: host,
                                  origin: origin, keepAlive: keepAlive, body: [])
            var recorded: RecordedHead?
            if server.config.recordRequests {
                recorded = (request.method, target, minor == 1 ? "HTTP/1.1" : "HTTP/1.0",
                            head.fields.map { (text($0.name), text($0.value)) })
            }
            return .success((request, framing, expect == "100-continue", recorded))
        }
    }

    /// Reads the body, records the request, applies the fault and answers.
    private func serveBody(_ requestIn: Request, framing: Framing, expectContinue: Bool,
                           recordedHead: RecordedHead?) -> Bool {
        var request = requestIn
        var hasBody = true
        if case .none = framing { hasBody = false }
        if expectContinue && request.minorVersion == 1 && hasBody {
            // Go sends 100 Continue when the handler first reads the body; every handler here reads it.
            if !Sock.writeAll(fd, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) { return false }
        }
        switch framing {
        case .none:
            break
        case .length(let n):
            while end - start < n {
                if !fill(limit: n + 4096) { return false }
            }
            request.body = Array(input[start..<(start + n)])
            start += n
        case .chunked:
            var decoder = ChunkedDecoder()
            while true {
                let result = decoder.feed(input, start: start, end: end, into: &request.body)
                switch result {
                case .failure(let error):
                    sendRequestError(error)
                    return false
                case .success(let consumed):
                    start += consumed
                }
                if decoder.isDone { break }
                if request.body.count > Self.maxBodyBytes {
                    sendRequestError(.bodyTooLarge)
                    return false
                }
                if !fill(limit: 64 * 1024) { return false }
            }
        }
        let body = request.body
        // The fault is read once, with the request counted: later changes apply to later requests only.
        let fault = server.record {
            let h = recordedHead!
            return FakeOllamaServer.RecordedRequest(method: h.method, target: h.target, version: h.version,
                                                    headers: h.headers, body: body)
        }
        if fault == .hang {
            holdSilently()
            return false
        }
        if fault == .closeWithoutAnswer { return false }
        let reply = router.reply(for: request)
        switch reply {
        case .fixed(let status, let headers, let body):
            return sendFixed(status: status, headers: headers, body: body, request: request)
        case .stream(let headers, let lines, let flushing, let makeLine):
            return sendStream(headers: headers, lines: lines, flushing: flushing, request: request, fault: fault,
                              makeLine: makeLine)
        }
    }

    /// Makes room in `input` and reads more; false on EOF, error, or when `limit` bytes are already buffered.
    func fill(limit: Int) -> Bool {
        if start == end {
            start = 0
            end = 0
        }
        if end == input.count {
            if start > 0 {
                Syscall.moveDown(&input, from: start, count: end - start)
                end -= start
                start = 0
            }
            if end == input.count {
                if input.count >= limit { return false }
                input.append(contentsOf: repeatElement(0, count: input.count))
            }
        }
        let n = Sock.read(fd, into: &input, at: end, count: input.count - end)
        if n <= 0 { return false }
        end += n
        return true
    }

    /// The "hang" fault: say nothing; drain whatever the client sends until it leaves or the server stops.
    private func holdSilently() {
        var scratch = [UInt8](repeating: 0, count: 4096)
        while !server.isStopping {
            var p = pollfd(fd: fd, events: Int16(POLLIN) | PollFlags.rdHup, revents: 0)
            let rc = poll(&p, 1, -1)
            if rc < 0 { if errno == EINTR { continue }; return }
            if p.revents & (PollFlags.rdHup | Int16(POLLHUP) | Int16(POLLERR)) != 0 { return }
            let n = Sock.read(fd, into: &scratch, at: 0, count: scratch.count)
            if n <= 0 { return }
        }
    }
}

/// Lower-case header names `interpretHead` looks for, as bytes (compared with ASCII case folding).
private enum HeaderName {
    static let host = Array("host".utf8)
    static let origin = Array("origin".utf8)
    static let expect = Array("expect".utf8)
    static let connection = Array("connection".utf8)
    static let contentLength = Array("content-length".utf8)
    static let transferEncoding = Array("transfer-encoding".utf8)
}

extension Substring {
    /// The substring without leading and trailing spaces and tabs.
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
