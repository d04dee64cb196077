/// libFuzzer target: one client connection's flow control, sans I/O — `ClientFlow` and `RequestParser` inside a
/// model of `ClientConnection` (read buffer with compaction and head-time growth, pipelined heads, Content-Length
/// bodies skipped, answers queued for the client, deferred work run one pass per loop iteration as `EventLoop`
/// does). The real connection needs sockets and OpenSSL; this target covers its bookkeeping, not its syscalls.
///
/// The input is the client's byte stream; a generator seeded from it chooses how those bytes are split into
/// segments, whether and when the client half-closes, how much the kernel takes per write and the client reads per
/// read, and the order of events: client sends, readable, writable, client reads. Checked after every event:
/// - the bytes queued for the client never exceed the output bound plus one answer; the read buffer stays within
///   its limits; one readable event does a bounded number of reads; a deferred pass does a bounded amount of work;
/// - once the client has sent everything and reads everything, the connection is not stuck: the client's bytes
///   were all read (or the connection ended: a refused head, the client's EOF), no complete head waits unparsed,
///   and the client received exactly the answers to its requests, in order (a prefix of them when it half-closed).

/// xorshift64: the decisions of one run, reproducible from the input.
struct Decisions {
    var state: UInt64
    init(_ seed: UInt64) { state = seed | 1 }
    mutating func next(_ bound: Int) -> Int {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Int(truncatingIfNeeded: (state >> 11) % UInt64(max(1, bound)))
    }
}

/// The model connection: what `ClientConnection` keeps for a client, driven by events.
struct ModelConnection {
    static let bufferSize = 1024
    static let outputBound = 2048
    static let maxAnswer = 700
    let parser = RequestParser(limits: HTTPLimits(maxRequestLine: 256, maxHeaderCount: 12, maxHeadBytes: 1024))
    var head = RequestHead()
    var flow = ClientFlow(outputBound: ModelConnection.outputBound)

    var input: [UInt8] = []
    var inStart = 0
    var inEnd = 0
    var out: [UInt8] = []
    var outStart = 0
    var bodyLeft = 0
    var closeAfterFlush = false
    var closed = false
    var requests = 0
    /// Every answer queued, in order: what the client must receive.
    var answers: [UInt8] = []
    /// Work deferred to the end of the loop iteration.
    var deferred: [Int] = []

    var queued: Int { out.count - outStart }

    var wantsRead: Bool { !closed && !closeAfterFlush && flow.mayRead(queued: queued) }

    /// An answer of a size derived from the request, like a health check, a 401 or a 404 of varying length.
    mutating func answer(status: Int) {
        requests += 1
        let size = (requests &* 131 &+ inStart &* 7) % (ModelConnection.maxAnswer - 64)
        var bytes = Array("HTTP/1.1 \(status) X\r\nContent-Length: \(size)\r\n\r\n".utf8)
        for i in 0..<size { bytes.append(UInt8(truncatingIfNeeded: 0x61 &+ (requests &+ i) % 26)) }
        Fuzz.check(bytes.count <= ModelConnection.maxAnswer, "answer of \(bytes.count) bytes")
        out.append(contentsOf: bytes)
        answers.append(contentsOf: bytes)
    }

    /// `ClientConnection.processInput`: bodies, then heads, while the flow allows.
    mutating func processInput() {
        var steps = 0
        while !closed {
            steps += 1
            Fuzz.check(steps < 10_000, "processInput does not end")
            if bodyLeft > 0 {
                let n = min(bodyLeft, inEnd - inStart)
                if n == 0 { return }
                inStart += n
                bodyLeft -= n
                if bodyLeft == 0 { answer(status: 200) }
                continue
            }
            guard !closeAfterFlush, inStart < inEnd else { return }
            guard flow.mayStart(queued: queued) else { return }
            switch parser.parse(input, from: inStart, to: inEnd, into: &head) {
            case .needMore:
                return
            case .invalid(let error):
                answer(status: error.status)
                closeAfterFlush = true
                inStart = inEnd
                return
            case .complete:
                Fuzz.check(head.headLength > 0 && inStart + head.headLength <= inEnd, "head of \(head.headLength) bytes")
                inStart += head.headLength
                switch head.framing {
                case .contentLength(let n) where n > 0:
                    bodyLeft = n
                case .chunked, .untilClose:
                    // Refused in this model: the connection ends after the answer.
                    answer(status: 501)
                    closeAfterFlush = true
                    inStart = inEnd
                default:
                    answer(status: 200)
                }
            }
        }
    }

    /// `ClientConnection.makeRoom`: compact, or grow while a head is incomplete.
    mutating func makeRoom() -> Bool {
        if inStart > 0 {
            let n = inEnd - inStart
            for i in 0..<n { input[i] = input[inStart + i] }
            inStart = 0
            inEnd = n
            return true
        }
        if bodyLeft == 0 && input.count < parser.limits.maxHeadBytes + 256 {
            input.append(contentsOf: repeatElement(0, count: input.count))
            return true
        }
        return false
    }

    /// `ClientConnection.readAvailable` over the model socket `wire` (EOF once `wireClosed` and empty).
    mutating func readAvailable(_ wire: inout [UInt8], wireClosed: Bool, _ d: inout Decisions) {
        var reads = 0
        while wantsRead {
            reads += 1
            Fuzz.check(reads <= 64, "one readable event made \(reads) reads")
            if inStart == inEnd {
                inStart = 0
                inEnd = 0
            }
            if input.isEmpty { input = [UInt8](repeating: 0, count: ModelConnection.bufferSize) }
            if inEnd == input.count && !makeRoom() { return }
            let room = input.count - inEnd
            if wire.isEmpty {
                if wireClosed { closed = true }
                return
            }
            // The kernel hands over what it has, up to the room, sometimes less.
            let n = min(room, wire.count, 1 + d.next(2 * room))
            for i in 0..<n { input[inEnd + i] = wire[i] }
            wire.removeFirst(n)
            inEnd += n
            processInput()
            if n < room && wire.isEmpty { return }
        }
    }

    /// `ClientConnection.flush` into a kernel buffer with `space` bytes free; returns the bytes written.
    mutating func flush(space: Int) -> [UInt8] {
        let n = min(space, queued)
        let written = Array(out[outStart..<(outStart + n)])
        outStart += n
        if outStart == out.count {
            out.removeAll(keepingCapacity: true)
            outStart = 0
            if closeAfterFlush { closed = true }
            if flow.drained() { deferred.append(1) }
        }
        return written
    }

    /// The end of a loop iteration: only the work deferred before this pass runs (`EventLoop.runAfterIteration`).
    mutating func runDeferred(_ wire: inout [UInt8], wireClosed: Bool, _ d: inout Decisions) {
        let work = deferred
        deferred.removeAll()
        Fuzz.check(work.count <= 4, "\(work.count) deferred bodies in one pass")
        for _ in work where !closed {
            processInput()
            readAvailable(&wire, wireClosed: wireClosed, &d)
        }
    }
}

func fuzzConnection(_ stream: [UInt8]) {
    var d = Decisions(Fuzz.seed(stream))
    var c = ModelConnection()
    var sent = 0
    var wire: [UInt8] = []
    // The client half-closes after sending everything, sometimes.
    let halfCloses = d.next(4) == 0
    let kernelSize = 64 + d.next(1500)
    var kernel: [UInt8] = []
    var received: [UInt8] = []

    func checkBounds(_ c: ModelConnection) {
        Fuzz.check(c.queued <= ModelConnection.outputBound + ModelConnection.maxAnswer,
                   "\(c.queued) bytes queued for the client")
        Fuzz.check(c.inEnd - c.inStart <= c.parser.limits.maxHeadBytes + 256 + ModelConnection.bufferSize,
                   "\(c.inEnd - c.inStart) bytes buffered from the client")
    }

    // Events in any order until the client has sent everything.
    var events = 0
    while sent < stream.count && !c.closed {
        events += 1
        Fuzz.check(events < 200_000, "too many events")
        switch d.next(5) {
        case 0, 1:
            let n = min(stream.count - sent, 1 + d.next(d.next(4) == 0 ? 600 : 12))
            wire.append(contentsOf: stream[sent..<(sent + n)])
            sent += n
        case 2:
            if c.wantsRead && !wire.isEmpty { c.readAvailable(&wire, wireClosed: false, &d) }
        case 3:
            let space = kernelSize - kernel.count
            if c.queued > 0 && space > 0 { kernel.append(contentsOf: c.flush(space: 1 + d.next(space))) }
        default:
            let n = min(kernel.count, d.next(kernelSize + 1))
            received.append(contentsOf: kernel[0..<n])
            kernel.removeFirst(n)
        }
        c.runDeferred(&wire, wireClosed: false, &d)
        checkBounds(c)
    }

    // The client has sent everything (and maybe closed) and now reads everything: the connection must settle.
    var quiet = 0
    var rounds = 0
    while quiet < 3 && !c.closed {
        rounds += 1
        Fuzz.check(rounds < 100_000, "the connection does not settle")
        let before = (wire.count, c.queued, kernel.count, c.inEnd - c.inStart, c.deferred.count, c.requests)
        if c.wantsRead && (!wire.isEmpty || halfCloses) { c.readAvailable(&wire, wireClosed: halfCloses, &d) }
        if c.queued > 0 { kernel.append(contentsOf: c.flush(space: kernelSize - kernel.count)) }
        received.append(contentsOf: kernel)
        kernel.removeAll()
        c.runDeferred(&wire, wireClosed: halfCloses, &d)
        checkBounds(c)
        let after = (wire.count, c.queued, kernel.count, c.inEnd - c.inStart, c.deferred.count, c.requests)
        quiet = before == after ? quiet + 1 : 0
    }
    received.append(contentsOf: kernel)

    // What the client got is the answers, in order: all of them, unless the connection ended first.
    Fuzz.check(received.count <= c.answers.count && Array(c.answers[0..<received.count]) == received,
               "the client received bytes that are not the answers in order")
    if c.closed { return }
    Fuzz.check(received.count == c.answers.count, "\(c.answers.count - received.count) answer bytes never sent")
    if !c.closeAfterFlush {
        Fuzz.check(wire.isEmpty, "\(wire.count) client bytes never read while the client read everything")
        if c.bodyLeft == 0 && c.inStart < c.inEnd {
            var probe = RequestHead()
            let verdict = c.parser.parse(c.input, from: c.inStart, to: c.inEnd, into: &probe)
            Fuzz.check(verdict == .needMore, "a buffered head was left unparsed: \(verdict)")
        }
    }
}

/// libFuzzer's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func connectionFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzConnection(Fuzz.bytes(data, size))
    return 0
}
