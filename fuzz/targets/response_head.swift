/// libFuzzer target: ResponseParser over arbitrary bytes, as if they came from the upstream.
///
/// For each input, for a request that was and was not HEAD, and for two parsers (default and tight limits), it
/// checks the same agreement as `request_head` (a prefix cut at a point derived from the first byte never
/// contradicts the whole; a reused head after `.needMore` equals a fresh one; the input at an offset with junk
/// around it gives the same head), and on `.complete`: headLength ≤ input count, the head ends in CRLF CRLF and
/// is exactly as long as needed, every range lies within the head, status is 100...599, no-body statuses and
/// HEAD responses have no framing, Content-Length / Transfer-Encoding agree with the framing, a response with
/// both or framed until close is never kept alive. Every refusal is a 502.

/// What a parse decided, with every range made relative to `start`.
struct ResponseSnapshot: Equatable {
    var verdict: ParseResult
    var status = 0
    var version: HTTPVersion = .http11
    var reason: Range<Int> = 0..<0
    var headers: [HeaderField] = []
    var framing: BodyFraming = .none
    var keepAlive = false
    var headLength = 0

    init(_ verdict: ParseResult, _ head: ResponseHead, start: Int) {
        self.verdict = verdict
        guard verdict == .complete else { return }
        func shift(_ r: Range<Int>) -> Range<Int> { (r.lowerBound - start)..<(r.upperBound - start) }
        status = head.status
        version = head.version
        reason = shift(head.reason)
        headers = head.headers.map { HeaderField(name: shift($0.name), value: shift($0.value), kind: $0.kind) }
        framing = head.framing
        keepAlive = head.keepAlive
        headLength = head.headLength
    }
}

/// Parses buffer[start..<end] into `head` and snapshots the outcome.
func parseResponse(_ parser: ResponseParser, _ buffer: [UInt8], _ start: Int, _ end: Int, _ wasHead: Bool,
                   _ head: inout ResponseHead) -> ResponseSnapshot {
    let verdict = parser.parse(buffer, from: start, to: end, requestWasHead: wasHead, into: &head)
    return ResponseSnapshot(verdict, head, start: start)
}

/// Checks the invariants of a `.complete` head parsed from input[0..<input.count].
func checkCompleteResponse(_ input: [UInt8], _ head: ResponseHead, _ parser: ResponseParser, _ wasHead: Bool) {
    let n = input.count
    let headRange = 0..<head.headLength
    Fuzz.check(head.headLength >= 16 && head.headLength <= n, "headLength \(head.headLength) outside 16...\(n)")
    Fuzz.check(Array(input[(head.headLength - 4)..<head.headLength]) == [13, 10, 13, 10],
               "head does not end in CRLF CRLF: \(Fuzz.show(input, headRange))")
    Fuzz.check((100...599).contains(head.status), "status \(head.status)")
    Fuzz.check(Fuzz.contains(headRange, head.reason), "reason \(head.reason) outside head")
    var contentLength = false
    var transferEncoding = false
    for field in head.headers {
        Fuzz.check(!field.name.isEmpty && Fuzz.contains(headRange, field.name), "name \(field.name) outside head")
        Fuzz.check(Fuzz.contains(headRange, field.value), "value \(field.value) outside head")
        Fuzz.check(field.name.upperBound <= field.value.lowerBound, "value starts before its name ends")
        for i in field.value {
            Fuzz.check(input[i] != 13 && input[i] != 10 && input[i] != 0, "CR, LF or NUL in a value")
        }
        let lower = Fuzz.lowercased(input, field.name)
        if lower == Array("content-length".utf8) { Fuzz.check(field.kind == .contentLength, "CL not recognised") }
        if lower == Array("transfer-encoding".utf8) {
            Fuzz.check(field.kind == .transferEncoding, "TE not recognised")
        }
        if field.kind == .contentLength {
            contentLength = true
            // A value of only commas and blanks ("Content-Length: ,") must have been refused (it was a finding).
            Fuzz.check(field.value.contains(where: { input[$0] != 0x2C && input[$0] != 0x20 && input[$0] != 9 }),
                       "an empty Content-Length list was accepted")
        }
        if field.kind == .transferEncoding { transferEncoding = true }
    }
    let noBody = wasHead || head.status < 200 || head.status == 204 || head.status == 304
    switch head.framing {
    case .none:
        Fuzz.check(noBody, "framing .none for status \(head.status)")
    case .contentLength(let length):
        Fuzz.check(!noBody && length >= 0 && contentLength && !transferEncoding, "bad Content-Length framing")
    case .chunked:
        Fuzz.check(!noBody && transferEncoding, "chunked without Transfer-Encoding")
    case .untilClose:
        Fuzz.check(!noBody && !head.keepAlive, "framed until close but kept alive")
        // Once a finding (fuzz/crashes/README.md): "Content-Length: ," was taken as no Content-Length. Fixed.
        Fuzz.check(transferEncoding || !contentLength, "Content-Length ignored without Transfer-Encoding")
    }
    if noBody { Fuzz.check(head.framing == .none, "status \(head.status) (HEAD: \(wasHead)) has a body") }
    if transferEncoding && contentLength {
        // Once a finding (fuzz/crashes/README.md): a HEAD/1xx/204/304 response with both was kept alive. Fixed.
        Fuzz.check(!head.keepAlive, "CL with TE kept alive")
    }

    var again = ResponseHead()
    let exact = parseResponse(parser, input, 0, head.headLength, wasHead, &again)
    Fuzz.check(exact == ResponseSnapshot(.complete, head, start: 0), "head alone parses differently: \(exact.verdict)")
    let short = parser.parse(input, from: 0, to: head.headLength - 1, requestWasHead: wasHead, into: &again)
    Fuzz.check(short == .needMore, "head minus one byte gives \(short), not needMore")
}

/// Runs every check for one parser and one kind of request.
func fuzzResponse(_ input: [UInt8], _ parser: ResponseParser, wasHead: Bool) {
    let n = input.count
    var head = ResponseHead()
    let whole = parseResponse(parser, input, 0, n, wasHead, &head)
    switch whole.verdict {
    case .complete:
        checkCompleteResponse(input, head, parser, wasHead)
    case .invalid(let error):
        Fuzz.check(error.status == 502, "response refused with \(error.status)")
    case .needMore:
        break
    }

    let cut = Fuzz.splitPoint(count: n, byte: input.first ?? 0)
    var reused = ResponseHead()
    let prefix = parseResponse(parser, input, 0, cut, wasHead, &reused)
    switch prefix.verdict {
    case .complete, .invalid:
        Fuzz.check(prefix == whole, "prefix of \(cut)/\(n) gives \(prefix.verdict), whole gives \(whole.verdict)")
    case .needMore:
        let rest = parseResponse(parser, input, 0, n, wasHead, &reused)
        Fuzz.check(rest == whole, "after needMore at \(cut)/\(n) the reused head gives \(rest.verdict), not \(whole.verdict)")
    }

    let offset = 1 + Int((input.last ?? 0) & 7)
    let junk: [UInt8] = [13, 10, 13, 10, 0x20, 0x3A, 0, 0x0A]
    let shifted = Array(junk.prefix(offset)) + input + junk
    var moved = ResponseHead()
    let atOffset = parseResponse(parser, shifted, offset, offset + n, wasHead, &moved)
    Fuzz.check(atOffset == whole, "at offset \(offset) gives \(atOffset.verdict), at 0 gives \(whole.verdict)")
}

/// libFuzzer's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func responseHeadFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    let tight = ResponseParser(limits: HTTPLimits(maxRequestLine: 40, maxHeaderCount: 6, maxHeadBytes: 200))
    for parser in [ResponseParser(), tight] {
        fuzzResponse(input, parser, wasHead: false)
        fuzzResponse(input, parser, wasHead: true)
    }
    return 0
}
