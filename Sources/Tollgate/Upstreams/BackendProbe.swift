import Glibc
import TollgateHTTP
import TollgateIO

/// One `GET path` to a backend over a fresh non-blocking connection (`Connection: close`), read to the end:
/// the small HTTP/1.1 client behind health checks and model polls. No blocking socket, no Foundation.
///
/// Loop thread only. Closes its socket exactly once, then calls `done` exactly once.
final class BackendProbe: EventHandler {
    /// What a probe found: the status and body, or why there is none.
    enum Outcome {
        case response(status: Int, body: [UInt8])
        case failed(String)
    }

    private let loop: EventLoop
    private let fd: Int32
    private var request: [UInt8]
    private var written = 0
    private var input: [UInt8] = []
    private var connected: Bool
    private var finished = false
    private let done: (Outcome) -> Void
    private(set) var deadline: UInt64
    /// A reply larger than this is refused (a catalog of thousands of models is far smaller).
    static let maxReplyBytes = 4 << 20

    /// Starts the request; `done` runs once on this loop (a refused connection reports at the end of this
    /// iteration, other outcomes when they happen).
    static func start(loop: EventLoop, address: UpstreamAddress, path: String, timeoutNanos: UInt64,
                      done: @escaping (Outcome) -> Void) {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(address.hostHeader)\r\nUser-Agent: tollgate-health\r\nAccept: application/json\r\nConnection: close\r\n\r\n".utf8)
        switch Socket.connect(to: address.address) {
        case .failed(let e):
            let detail = Syscall.describe(e)
            loop.deferUntilIterationEnd { done(.failed("connect: \(detail)")) }
        case .connected(let fd):
            let probe = BackendProbe(loop: loop, fd: fd, request: request, connected: true, timeoutNanos: timeoutNanos, done: done)
            probe.send()
        case .inProgress(let fd):
            _ = BackendProbe(loop: loop, fd: fd, request: request, connected: false, timeoutNanos: timeoutNanos, done: done)
        }
    }

    /// A loop that finishes lets go of its handlers, this one too when the server stopped during a round: unfinished,
    /// it still owns its socket and closes it here (without calling `done`: nothing runs on a finished loop).
    deinit {
        if !finished { Syscall.close(fd) }
    }

    private init(loop: EventLoop, fd: Int32, request: [UInt8], connected: Bool, timeoutNanos: UInt64,
                 done: @escaping (Outcome) -> Void) {
        self.loop = loop
        self.fd = fd
        self.request = request
        self.connected = connected
        self.done = done
        deadline = loop.now &+ timeoutNanos
        loop.register(fd, interest: .write, handler: self)
    }

    func ready(_ events: ReadyEvents) {
        guard !finished else { return }
        if !connected {
            let err = Syscall.socketError(fd)
            guard err == 0, !events.contains(.error) else {
                finish(.failed("connect: \(Syscall.describe(err == 0 ? ECONNREFUSED : err))"))
                return
            }
            connected = true
        }
        if written < request.count {
            send()
            return
        }
        receive()
    }

    func deadlineExpired(now: UInt64) {
        finish(.failed("no answer in time"))
    }

    private func send() {
        while written < request.count {
            switch Syscall.write(fd, request, at: written, count: request.count - written) {
            case .bytes(let n): written += n
            case .wouldBlock:
                loop.setInterest(fd, .write)
                return
            case .eof, .failed(_):
                finish(.failed("write failed"))
                return
            }
        }
        loop.setInterest(fd, .read)
    }

    private func receive() {
        while true {
            if input.count >= BackendProbe.maxReplyBytes {
                finish(.failed("reply larger than \(BackendProbe.maxReplyBytes) bytes"))
                return
            }
            let start = input.count
            input.append(contentsOf: repeatElement(0, count: 16 * 1024))
            switch Syscall.read(fd, into: &input, at: start, count: 16 * 1024) {
            case .bytes(let n):
                input.removeLast(16 * 1024 - n)
                // A backend that keeps the connection open despite "Connection: close" is done when its body is.
                if let outcome = BackendProbe.parse(input, atEOF: false) {
                    finish(outcome)
                    return
                }
            case .wouldBlock:
                input.removeLast(16 * 1024)
                return
            case .eof:
                input.removeLast(16 * 1024)
                finish(BackendProbe.parse(input, atEOF: true) ?? .failed("the connection closed early"))
                return
            case .failed(let e):
                input.removeLast(16 * 1024)
                finish(.failed("read: \(Syscall.describe(e))"))
                return
            }
        }
    }

    /// The status and body of a reply (Content-Length, chunked, or until close), or nil while more is needed.
    /// `atEOF`: the connection has closed, so what is here is all there will be.
    static func parse(_ bytes: [UInt8], atEOF: Bool) -> Outcome? {
        var head = ResponseHead()
        switch ResponseParser().parse(bytes, from: 0, to: bytes.count, requestWasHead: false, into: &head) {
        case .needMore: return atEOF ? .failed("the connection closed before a complete response head") : nil
        case .invalid(let e): return .failed("invalid response (\(e.reason))")
        case .complete: break
        }
        let bodyStart = head.headLength
        switch head.framing {
        case .none:
            return .response(status: head.status, body: [])
        case .contentLength(let n):
            guard bytes.count - bodyStart >= n else { return atEOF ? .failed("the body ended early") : nil }
            return .response(status: head.status, body: Array(bytes[bodyStart..<bodyStart + n]))
        case .untilClose:
            return atEOF ? .response(status: head.status, body: Array(bytes[bodyStart...])) : nil
        case .chunked:
            var decoder = ChunkedDecoder()
            var body: [UInt8] = []
            do {
                _ = try decoder.decode(bytes, from: bodyStart, to: bytes.count) { body.append(contentsOf: bytes[$0]) }
            } catch {
                return .failed("invalid chunked body (\(error.reason))")
            }
            guard decoder.isDone else { return atEOF ? .failed("the body ended early") : nil }
            return .response(status: head.status, body: body)
        }
    }

    private func finish(_ outcome: Outcome) {
        guard !finished else { return }
        finished = true
        deadline = 0
        loop.deregister(fd)
        Syscall.close(fd)
        done(outcome)
    }
}
