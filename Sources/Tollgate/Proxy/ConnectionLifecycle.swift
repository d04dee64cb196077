/// Where one client connection stands and when it ends: its phase (PROXY header, TLS handshake, between requests, in
/// an exchange, lingering, closed), its one timer (head, keep-alive idle, body, linger) and the send deadline, and
/// whether it closes once its output is written and lingers then. `ClientConnection` tells it what happened
/// (methods named after events, each given the time) and does what it answers; the lifecycle itself reads no clock
/// and touches no socket, so it is tested without either.
struct ConnectionLifecycle {
    /// Where the connection is: before its first request (PROXY header, TLS handshake), between requests, in an
    /// exchange, lingering after its last response, or closed.
    enum Phase { case proxyHeader, handshake, waitingHead, exchange, lingering, closed }
    /// What `timerDeadline` ends: a head that takes too long, an idle keep-alive, a stalled body, the linger.
    enum Timer { case none, head, keepAlive, body, linger }

    /// How long a lingering close reads and discards what the client still sends.
    static let lingerNanos: UInt64 = 2_000_000_000

    private(set) var phase: Phase
    private(set) var timer: Timer = .head
    /// When `timer` fires; zero when none is armed.
    private(set) var timerDeadline: UInt64
    /// When a client that accepts none of its queued output is closed; zero while nothing waits for it.
    private(set) var sendDeadline: UInt64 = 0
    /// No further request is read: the connection ends once its output is written.
    private(set) var closesAfterFlush = false
    /// After the last response, read and discard what the client still sends before closing (it may be mid-body).
    private(set) var lingerNeeded = false
    private(set) var requestsServed = 0
    /// The timeouts armed from now on (a reload changes them; deadlines already armed stay).
    var timeouts: Timeouts
    /// Whether a TLS handshake follows the PROXY header.
    private let handshakes: Bool

    /// A connection accepted at `now`: the head timer runs from accept, through the PROXY header and the handshake.
    init(proxyHeader: Bool, tls: Bool, timeouts: Timeouts, now: UInt64) {
        phase = proxyHeader ? .proxyHeader : tls ? .handshake : .waitingHead
        handshakes = tls
        self.timeouts = timeouts
        timerDeadline = now &+ timeouts.head
    }

    var isClosed: Bool { phase == .closed }

    /// The earlier of the send deadline and the timer's (zero when neither is armed): the event loop's deadline.
    var deadline: UInt64 {
        if sendDeadline != 0 && (timerDeadline == 0 || sendDeadline < timerDeadline) { return sendDeadline }
        return timerDeadline
    }

    // MARK: before the first request

    /// The PROXY header was read: the handshake next on TLS, else the first head.
    mutating func proxyHeaderRead() {
        phase = handshakes ? .handshake : .waitingHead
    }

    /// The TLS handshake completed: the first head may arrive (still under the head timer from accept).
    mutating func handshakeFinished() {
        phase = .waitingHead
    }

    // MARK: requests

    /// Bytes of a next head are here: after a keep-alive wait the head timer runs again, from now.
    mutating func headArriving(now: UInt64) {
        // `.none` between requests: the last response was still being written when the next head came.
        guard timer == .keepAlive || (timer == .none && phase == .waitingHead) else { return }
        timer = .head
        timerDeadline = now &+ timeouts.head
    }

    /// A complete head started an exchange: no timer while its phases run.
    mutating func exchangeStarted() {
        phase = .exchange
        requestsServed += 1
        stopTimer()
    }

    /// A request body is expected: the between-reads timer from now, never past `totalDeadline` (zero: none).
    mutating func bodyExpected(now: UInt64, totalDeadline: UInt64 = 0) {
        timer = .body
        let idle = now &+ timeouts.clientBodyIdle
        timerDeadline = totalDeadline != 0 && totalDeadline < idle ? totalDeadline : idle
    }

    /// Body bytes moved upstream: the between-reads timeout restarts from now, or stops once the body is complete.
    mutating func bodyMoved(now: UInt64, done: Bool) {
        if done {
            stopTimer()
        } else {
            timerDeadline = now &+ timeouts.clientBodyIdle
        }
    }

    /// The request body is complete (or none is read now): no timer.
    mutating func stopTimer() {
        timer = .none
        timerDeadline = 0
    }

    /// The exchange ended with its response: `.keepAlive` (the next request is waited for, under the keep-alive
    /// timer) when the client and the response allow it, the request was read whole and the server is not
    /// draining; else `.closeAfterFlush`, lingering when the client may still be sending (an unread body or
    /// pipelined bytes), as nginx does.
    mutating func exchangeFinished(now: UInt64, keepAlive: Bool, requestDone: Bool, unreadInput: Bool,
                                   draining: Bool, outputPending: Bool = false) -> Action {
        phase = .waitingHead
        if keepAlive && requestDone && !draining {
            // Idle only once the response is out, as nginx's keep-alive: while it is still being written the send
            // deadline governs, and the keep-alive timer starts when the output drains (`outputDrained`).
            if outputPending {
                stopTimer()
            } else {
                timer = .keepAlive
                timerDeadline = now &+ timeouts.keepAliveIdle
            }
            return .keepAlive
        }
        closesAfterFlush = true
        lingerNeeded = !requestDone || unreadInput
        return .closeAfterFlush
    }

    /// The response was cut short (the upstream failed mid-stream): close once written, lingering only while the
    /// request body was still coming.
    mutating func exchangeTruncated(requestDone: Bool) {
        phase = .waitingHead
        closesAfterFlush = true
        lingerNeeded = !requestDone
    }

    /// A request refused before an exchange exists (bad framing): close once the answer is written, lingering,
    /// since the rest of that request may still be coming.
    mutating func refused() {
        closesAfterFlush = true
        lingerNeeded = true
    }

    // MARK: output

    /// The socket took no more of what is left to write (`progressed`: after taking some in this flush). The send
    /// deadline runs from the last write that moved bytes, as nginx's `send_timeout`: a client reading slowly is not
    /// one accepting nothing, and a blocked write that made no progress does not push the deadline back.
    mutating func outputBlocked(now: UInt64, progressed: Bool = false) {
        if sendDeadline == 0 || progressed { sendDeadline = now &+ timeouts.clientSend }
    }

    /// Everything queued was written. With no exchange in progress and the connection closing, its end: `.finish`
    /// when nothing more can come, `.linger` (now lingering, under the linger timer) when the client may still be
    /// sending; otherwise `.proceed`.
    mutating func outputDrained(now: UInt64, exchangeOpen: Bool) -> Action {
        sendDeadline = 0
        if !exchangeOpen && !closesAfterFlush && phase == .waitingHead && timer == .none {
            // The last response of a kept-alive connection is out: now it is idle.
            timer = .keepAlive
            timerDeadline = now &+ timeouts.keepAliveIdle
        }
        guard closesAfterFlush && !exchangeOpen else { return .proceed }
        guard lingerNeeded else { return .finish }
        phase = .lingering
        timer = .linger
        timerDeadline = now &+ ConnectionLifecycle.lingerNanos
        return .linger
    }

    // MARK: ending

    /// A deadline may have passed: the send deadline first (`send-timeout`), then the timer's, whose reason says
    /// which (a linger that ran out is a completed close). `.proceed` when none has, and a timer of `.none` only
    /// clears its deadline.
    mutating func deadlineReached(now: UInt64) -> Action {
        if sendDeadline != 0 && sendDeadline <= now { return .close(.sendTimeout) }
        guard timerDeadline != 0 && timerDeadline <= now else { return .proceed }
        switch timer {
        case .head: return .close(.headTimeout)
        case .keepAlive: return .close(.keepAliveTimeout)
        case .body: return .close(.bodyTimeout)
        case .linger: return .close(.completed)
        case .none:
            timerDeadline = 0
            return .proceed
        }
    }

    /// The server drains: `.close(.draining)` for a connection with nothing in progress (before its first request,
    /// or between requests with nothing unread, nothing left to write and no close pending), else `.proceed` (a head
    /// arriving is served with `Connection: close`, a last response is written first).
    func draining(unreadInput: Bool, outputPending: Bool) -> Action {
        switch phase {
        case .proxyHeader, .handshake:
            return .close(.draining)
        case .waitingHead where !unreadInput && !outputPending && !closesAfterFlush:
            return .close(.draining)
        default:
            return .proceed
        }
    }

    /// The connection closes: no deadline stays armed. False when it was closed already.
    mutating func close() -> Bool {
        guard phase != .closed else { return false }
        phase = .closed
        timerDeadline = 0
        sendDeadline = 0
        return true
    }
}
