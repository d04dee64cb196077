import Testing
@testable import TollgateHTTP

@Suite("Header field syntax")
struct HeaderSyntaxTests {
    @Test("Fields are ranges into the buffer with OWS trimmed")
    func fieldRanges() throws {
        let (result, head, buffer) = parseRequest(
            "GET / HTTP/1.1\r\nHost: h\r\nX-A:  \t spaced value \t \r\nX-Empty:\r\nX-B:v\r\n\r\n")
        #expect(result == .complete)
        try #require(head.headers.count == 4)
        #expect(text(buffer, head.headers[1].name) == "X-A")
        #expect(text(buffer, head.headers[1].value) == "spaced value")
        #expect(head.headers[2].value.isEmpty)
        #expect(text(buffer, head.headers[2].name) == "X-Empty")
        #expect(text(buffer, head.headers[3].value) == "v")
    }

    @Test("Values may carry HTAB, VCHAR and obs-text")
    func valueBytes() throws {
        var buffer = bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\tb ~!")
        buffer += [0x80, 0xC3, 0xA9, 0xFF]
        buffer += bytes("\r\n\r\n")
        var head = RequestHead()
        #expect(RequestParser().parse(buffer, from: 0, to: buffer.count, into: &head) == .complete)
        #expect(head.headers[1].value.count == 10)
    }

    @Test("Every byte value at every place of a long value gets the byte-by-byte verdict, in the head and cut short")
    func everyByteEverywhereInAValue() {
        // Values are scanned eight bytes at a time until a word holds a byte that is not SP, VCHAR or obs-text.
        // Put each of the 256 values at each of 24 places (three words and their seams), with the head ending
        // right after the value or continuing, and compare with the rule: HTAB, SP, 0x21-0x7E and 0x80-0xFF
        // pass; NUL, LF and every other control byte and DEL refuse with 400; CR ends the value.
        let prefix = bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: ")
        for place in 0..<24 {
            for value in 0...255 {
                var line = [UInt8](repeating: UInt8(ascii: "v"), count: 24)
                line[place] = UInt8(value)
                let buffer = prefix + line + bytes("\r\n\r\n")
                var head = RequestHead()
                let result = RequestParser().parse(buffer, from: 0, to: buffer.count, into: &head)
                let b = UInt8(value)
                if b == 0x0D {
                    // CR ends the value early: the byte after it must be LF, and it is "v" (or CR at the end).
                    #expect(status(result) == 400, "CR at \(place)")
                } else if b == 0x09 || (b >= 0x20 && b != 0x7F) {
                    #expect(result == .complete, "byte \(value) at \(place)")
                    if result == .complete {
                        // Leading and trailing HTAB/SP are trimmed from the value; anything else keeps all 24 bytes.
                        let trimmed = (place == 0 || place == 23) && (b == 0x09 || b == 0x20)
                        #expect(head.headers[1].value.count == (trimmed ? 23 : 24), "byte \(value) at \(place)")
                    }
                } else {
                    #expect(status(result) == 400, "byte \(value) at \(place)")
                }
                // The same bytes with the head not yet complete: a refusal already in them is made now,
                // anything else waits for more.
                let partial = Array(buffer[0..<(prefix.count + 24)])
                let early = RequestParser().parse(partial, from: 0, to: partial.count, into: &head)
                if b == 0x09 || (b >= 0x20 && b != 0x7F) || (b == 0x0D && place == 23) {
                    #expect(early == .needMore, "byte \(value) at \(place), cut short")
                } else {
                    #expect(status(early) == 400, "byte \(value) at \(place), cut short")
                }
            }
        }
    }

    @Test("Refused field syntax is 400", arguments: [
        ("space before colon", "Content-Length : 5"),
        ("tab before colon", "X-A\t: 1"),
        ("empty name", ": value"),
        ("no colon", "JustAName"),
        ("separator in name", "X(A): 1"),
        ("control in value", "X-A: a\u{01}b"),
        ("DEL in value", "X-A: a\u{7F}b"),
        ("escape in value", "X-A: \u{1B}[31m"),
        ("NUL in value", "X-A: a\u{0}b"),
        ("NUL in name", "X\u{0}A: b"),
        ("non-ASCII name", "X-\u{E9}: b"),
    ])
    func refused(label: String, line: String) {
        let (result, _, _) = parseRequest("GET / HTTP/1.1\r\nHost: h\r\n\(line)\r\n\r\n")
        #expect(status(result) == 400, "\(label)")
    }

    @Test("Obs-fold continuation lines are 400", arguments: [" folded", "\tfolded"])
    func obsFold(continuation: String) {
        let (result, _, _) = parseRequest("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\(continuation)\r\n\r\n")
        #expect(status(result) == 400)
        // Whitespace before the first field is the same thing.
        #expect(status(parseRequest("GET / HTTP/1.1\r\n\(continuation)\r\nHost: h\r\n\r\n").0) == 400)
    }

    @Test("A bare LF anywhere in the head is 400", arguments: [
        "GET / HTTP/1.1\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\n",
        "GET / HTTP/1.1\r\nX-A: a\nb\r\nHost: h\r\n\r\n",
        "GET /\n HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nX\n: a\r\nHost: h\r\n\r\n",
    ])
    func bareLF(request: String) {
        #expect(status(parseRequest(request).0) == 400)
    }

    @Test("A bare CR anywhere in the head is 400", arguments: [
        "GET / HTTP/1.1\rHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\r\n",
        "GET / HTTP/1.1\r\nX-A: a\rb\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\rX",
        "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n",
        "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ])
    func bareCR(request: String) {
        #expect(status(parseRequest(request).0) == 400)
    }

    @Test("NUL in the request line is 400 even before the line ends")
    func nulInRequestLine() {
        #expect(status(parseRequest("GET /a\u{0}").0) == 400)
    }

    @Test("More than maxHeaderCount fields is 431; exactly maxHeaderCount passes")
    func tooManyHeaders() {
        let limits = HTTPLimits(maxHeaderCount: 10)
        let nine = (0..<9).map { "X-\($0): v\r\n" }.joined()
        #expect(parseRequest("GET / HTTP/1.1\r\nHost: h\r\n\(nine)\r\n", limits: limits).0 == .complete)
        let ten = (0..<10).map { "X-\($0): v\r\n" }.joined()
        #expect(status(parseRequest("GET / HTTP/1.1\r\nHost: h\r\n\(ten)\r\n", limits: limits).0) == 431)
        let many = (0..<101).map { "X-\($0): v\r\n" }.joined()
        #expect(status(parseRequest("GET / HTTP/1.1\r\nHost: h\r\n\(many)\r\n").0) == 431)
    }

    @Test("A head longer than maxHeadBytes is 431 as soon as that many bytes are buffered")
    func headTooLarge() {
        let limits = HTTPLimits(maxHeadBytes: 100)
        let request = "GET / HTTP/1.1\r\nHost: h\r\nX-A: " + String(repeating: "a", count: 200)
        let buffer = bytes(request)
        var head = RequestHead()
        let parser = RequestParser(limits: limits)
        #expect(parser.parse(buffer, from: 0, to: 99, into: &head) == .needMore)
        #expect(status(parser.parse(buffer, from: 0, to: 100, into: &head)) == 431)
        let big = "GET / HTTP/1.1\r\nHost: h\r\nX-A: " + String(repeating: "a", count: 40_000) + "\r\n\r\n"
        #expect(status(parseRequest(big).0) == 431)
    }

    @Test("A head of exactly maxHeadBytes passes; one byte more is 431")
    func headExactlyAtLimit() {
        let request = "GET / HTTP/1.1\r\nHost: h\r\nX-A: 12345\r\n\r\n"
        let size = bytes(request).count
        #expect(parseRequest(request, limits: HTTPLimits(maxHeadBytes: size)).0 == .complete)
        #expect(status(parseRequest(request, limits: HTTPLimits(maxHeadBytes: size - 1)).0) == 431)
    }
}
