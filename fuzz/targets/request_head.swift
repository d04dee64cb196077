/// libFuzzer target: RequestParser over arbitrary bytes.
///
/// For each input and for two parsers (default limits, and tight ones that reach 414/431 inside libFuzzer's
/// 4 KiB inputs) it checks that:
/// - a prefix cut at a point derived from the first byte never contradicts the whole: `.complete` on the prefix
///   means the same head on the whole, `.invalid` on the prefix means the same error on the whole; after
///   `.needMore`, parsing the whole into the same (reused) `RequestHead` gives what a fresh one gets;
/// - the input placed at an offset inside a larger buffer, with junk before `start` and after `end`, parses to
///   the same verdict with every range shifted (pipelining; nothing is read outside start..<end);
/// - on `.complete`: headLength ≤ input count and the head ends in CRLF CRLF; parsing exactly headLength bytes
///   gives the same head and one byte less gives `.needMore`; every range lies within the head; names are tokens
///   and no value holds CR, LF or NUL; Content-Length / Transfer-Encoding / Host are recognised in any case;
///   framing is consistent (never Content-Length with Transfer-Encoding, chunked only for HTTP/1.1, one Host);
/// - on `.invalid`: the status is one of 400, 414, 431, 501, 505.

/// The target Tollgate forwards decodes (percent-decoding as Go's `url.PathUnescape` does) to exactly the path it
/// decided on, holds only bytes a request line may carry, and is itself canonical: sending it again changes nothing.
func checkCanonicalTarget(_ input: [UInt8], _ head: RequestHead) {
    guard case .success(let canonical) = RequestTarget.canonicalize(input, head) else { return }
    let path: [UInt8], forward: [UInt8]
    switch canonical {
    case .asSent:
        path = Array(input[head.path])
        forward = Array(input[head.target])
        Fuzz.check(!path.contains(0x25) && !path.contains(0x23) || forward == [0x2A], "asSent path with % or #")
    case .rewritten(let p, let f):
        path = p
        forward = f
    }
    guard forward != [0x2A] else { return }
    Fuzz.check(forward.first == 0x2F, "forwarded target not origin-form")
    Fuzz.check(forward.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x23 }, "forwarded target has a byte outside VCHAR or a #")
    let q = forward.firstIndex(of: 0x3F) ?? forward.count
    var decoded: [UInt8] = []
    var i = 0
    while i < q {
        if forward[i] == 0x25 {
            Fuzz.check(i + 2 < q, "truncated escape in forwarded path")
            guard i + 2 < q, let hi = RequestTarget.hexValue(forward[i + 1]), let lo = RequestTarget.hexValue(forward[i + 2]) else {
                Fuzz.check(false, "invalid escape in forwarded path"); return
            }
            decoded.append(hi << 4 | lo)
            i += 3
        } else {
            decoded.append(forward[i])
            i += 1
        }
    }
    Fuzz.check(decoded == path, "forwarded target decodes to another path")
    Fuzz.check(!path.contains(0), "decided path holds NUL")
    // Sent again, the forwarded request decides the same path.
    let again = Array("GET ".utf8) + forward + Array(" HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
    var head2 = RequestHead()
    guard RequestParser().parse(again, from: 0, to: again.count, into: &head2) == .complete else {
        Fuzz.check(false, "forwarded target does not parse"); return
    }
    switch RequestTarget.canonicalize(again, head2) {
    case .success(.asSent): Fuzz.check(Array(again[head2.path]) == path, "forwarded target re-decided differently")
    case .success(.rewritten(let p2, _)): Fuzz.check(p2 == path, "forwarded target re-decided differently")
    case .failure: Fuzz.check(false, "forwarded target refused when sent again")
    }
}

/// What a parse decided, with every range made relative to `start` so heads from different offsets compare.
struct RequestSnapshot: Equatable {
    var verdict: ParseResult
    var method: HTTPMethod = .other
    var methodRange: Range<Int> = 0..<0
    var target: Range<Int> = 0..<0
    var path: Range<Int> = 0..<0
    var version: HTTPVersion = .http11
    var headers: [HeaderField] = []
    var framing: BodyFraming = .none
    var keepAlive = false
    var expectContinue = false
    var host: Range<Int>?
    var headLength = 0

    init(_ verdict: ParseResult, _ head: RequestHead, start: Int) {
        self.verdict = verdict
        guard verdict == .complete else { return }
        func shift(_ r: Range<Int>) -> Range<Int> { (r.lowerBound - start)..<(r.upperBound - start) }
        method = head.method
        methodRange = shift(head.methodRange)
        target = shift(head.target)
        path = shift(head.path)
        version = head.version
        headers = head.headers.map { HeaderField(name: shift($0.name), value: shift($0.value), kind: $0.kind) }
        framing = head.framing
        keepAlive = head.keepAlive
        expectContinue = head.expectContinue
        host = head.host.map(shift)
        headLength = head.headLength
    }
}

/// Parses buffer[start..<end] into `head` and snapshots the outcome.
func parseRequest(_ parser: RequestParser, _ buffer: [UInt8], _ start: Int, _ end: Int,
                  _ head: inout RequestHead) -> RequestSnapshot {
    let verdict = parser.parse(buffer, from: start, to: end, into: &head)
    return RequestSnapshot(verdict, head, start: start)
}

/// Checks the invariants of a `.complete` head parsed from input[0..<input.count].
func checkCompleteRequest(_ input: [UInt8], _ head: RequestHead, _ parser: RequestParser) {
    let n = input.count
    let headRange = 0..<head.headLength
    Fuzz.check(head.headLength >= 4 && head.headLength <= n, "headLength \(head.headLength) outside 4...\(n)")
    Fuzz.check(Array(input[(head.headLength - 4)..<head.headLength]) == [13, 10, 13, 10],
               "head does not end in CRLF CRLF: \(Fuzz.show(input, headRange))")
    for r in [head.methodRange, head.target, head.path] {
        Fuzz.check(!r.isEmpty && Fuzz.contains(headRange, r), "start-line range \(r) outside head \(headRange)")
    }
    Fuzz.check(Fuzz.contains(head.target, head.path), "path \(head.path) outside target \(head.target)")
    Fuzz.check(input[head.path.lowerBound] == 0x2F || (head.target.count == 1 && input[head.target.lowerBound] == 0x2A),
               "path does not start with / and target is not *")
    var contentLengths = 0
    var transferEncodings = 0
    var hosts = 0
    for field in head.headers {
        Fuzz.check(!field.name.isEmpty && Fuzz.contains(headRange, field.name), "name \(field.name) outside head")
        Fuzz.check(Fuzz.contains(headRange, field.value), "value \(field.value) outside head")
        Fuzz.check(field.name.upperBound <= field.value.lowerBound, "value starts before its name ends")
        for i in field.name {
            Fuzz.check(input[i] > 0x20 && input[i] < 0x7F && input[i] != 0x3A, "non-token byte in a name")
        }
        for i in field.value {
            Fuzz.check(input[i] != 13 && input[i] != 10 && input[i] != 0, "CR, LF or NUL in a value")
        }
        if let first = field.value.first, let last = field.value.last {
            Fuzz.check(input[first] != 0x20 && input[first] != 9 && input[last] != 0x20 && input[last] != 9,
                       "value not trimmed: \(Fuzz.show(input, field.value))")
        }
        // Recognition must not depend on case: a Transfer-Encoding the parser missed is a smuggling hole.
        let lower = Fuzz.lowercased(input, field.name)
        if lower == Array("content-length".utf8) {
            Fuzz.check(field.kind == .contentLength, "Content-Length not recognised")
        }
        if lower == Array("transfer-encoding".utf8) {
            Fuzz.check(field.kind == .transferEncoding, "Transfer-Encoding not recognised")
        }
        if lower == Array("host".utf8) { Fuzz.check(field.kind == .host, "Host not recognised") }
        switch field.kind {
        case .contentLength: contentLengths += 1
        case .transferEncoding: transferEncodings += 1
        case .host: hosts += 1
        default: break
        }
    }
    Fuzz.check(contentLengths <= 1 && transferEncodings <= 1 && hosts <= 1,
               "accepted CL×\(contentLengths) TE×\(transferEncodings) Host×\(hosts)")
    switch head.framing {
    case .none:
        Fuzz.check(contentLengths == 0 && transferEncodings == 0, "framing .none with CL or TE present")
    case .contentLength(let length):
        Fuzz.check(length >= 0 && contentLengths == 1 && transferEncodings == 0, "bad Content-Length framing")
    case .chunked:
        Fuzz.check(transferEncodings == 1 && contentLengths == 0 && head.version == .http11, "bad chunked framing")
    case .untilClose:
        Fuzz.check(false, "request framed until close")
    }
    if head.version == .http11 {
        Fuzz.check(hosts == 1 && head.host != nil, "HTTP/1.1 accepted without Host")
    } else {
        Fuzz.check(!head.expectContinue, "100-continue honoured for HTTP/1.0")
    }
    if let host = head.host {
        Fuzz.check(head.headers.contains { $0.kind == .host && $0.value == host }, "host is not the Host value")
    }

    // The head must not depend on what follows it, and must not be complete one byte early.
    var again = RequestHead()
    let exact = parseRequest(parser, input, 0, head.headLength, &again)
    Fuzz.check(exact == RequestSnapshot(.complete, head, start: 0), "head alone parses differently: \(exact.verdict)")
    let short = parser.parse(input, from: 0, to: head.headLength - 1, into: &again)
    Fuzz.check(short == .needMore, "head minus one byte gives \(short), not needMore")
}

/// Runs every check for one parser.
func fuzzRequest(_ input: [UInt8], _ parser: RequestParser) {
    let n = input.count
    var head = RequestHead()
    let whole = parseRequest(parser, input, 0, n, &head)
    switch whole.verdict {
    case .complete:
        checkCompleteRequest(input, head, parser)
        checkCanonicalTarget(input, head)
    case .invalid(let error):
        Fuzz.check([400, 414, 431, 501, 505].contains(error.status), "request refused with \(error.status)")
    case .needMore:
        break
    }

    // Incremental: a prefix, then the whole into the same head.
    let cut = Fuzz.splitPoint(count: n, byte: input.first ?? 0)
    var reused = RequestHead()
    let prefix = parseRequest(parser, input, 0, cut, &reused)
    switch prefix.verdict {
    case .complete, .invalid:
        Fuzz.check(prefix == whole, "prefix of \(cut)/\(n) gives \(prefix.verdict), whole gives \(whole.verdict)")
    case .needMore:
        let rest = parseRequest(parser, input, 0, n, &reused)
        Fuzz.check(rest == whole, "after needMore at \(cut)/\(n) the reused head gives \(rest.verdict), not \(whole.verdict)")
    }

    // The same bytes at an offset, with junk around them that must not be read.
    let offset = 1 + Int((input.last ?? 0) & 7)
    let junk: [UInt8] = [13, 10, 13, 10, 0x20, 0x3A, 0, 0x0A]
    let shifted = Array(junk.prefix(offset)) + input + junk
    var moved = RequestHead()
    let atOffset = parseRequest(parser, shifted, offset, offset + n, &moved)
    Fuzz.check(atOffset == whole, "at offset \(offset) gives \(atOffset.verdict), at 0 gives \(whole.verdict)")
}

/// libFuzzer's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func requestHeadFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    fuzzRequest(input, RequestParser())
    fuzzRequest(input, RequestParser(limits: HTTPLimits(maxRequestLine: 40, maxHeaderCount: 6, maxHeadBytes: 200)))
    return 0
}
