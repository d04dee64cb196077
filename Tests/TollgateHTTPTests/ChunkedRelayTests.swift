import Testing
@testable import TollgateHTTP

/// `ChunkedDecoder.relay`: a chunked body goes out as it came up to its last-chunk line, then an empty trailer
/// section, however the input is split and whatever trailer fields it had.
@Suite("Chunked relay")
struct ChunkedRelayTests {
    /// What a relay of `wire` fed in pieces ending at `splits` produced.
    struct Relayed: Equatable {
        var out: [UInt8] = []
        var data: [UInt8] = []
        var consumed = 0
        var done = false
        /// What `out` held after each call.
        var outAfterEachCall: [Int] = []
    }

    private func relay(_ wire: [UInt8], splits: [Int] = [], decoder: ChunkedDecoder = ChunkedDecoder())
        throws(HTTPParseError) -> Relayed {
        var decoder = decoder
        var result = Relayed()
        var start = 0
        for end in splits + [wire.count] where end >= start {
            let n = try decoder.relay(wire, from: start, to: end, into: &result.out) { result.data += wire[$0] }
            result.consumed += n
            result.outAfterEachCall.append(result.out.count)
            // Pipelined bytes after the body stay in the caller's buffer, as `decode` leaves them.
            start += n
            if decoder.isDone { break }
        }
        result.done = decoder.isDone
        return result
    }

    /// Chunks with extensions, a last-chunk line with one, and three trailer fields (HSTS and Set-Cookie among them).
    static let framed = "5\r\nhello\r\n3;ext=\"a b\"\r\nabc\r\n0;last\r\n"
    static let trailer = "Strict-Transport-Security: max-age=0\r\nset-cookie: a=b\r\nX-Other:\r\n\r\n"

    @Test("The trailer fields are dropped and an empty trailer section ends the body, at every split of the input")
    func everySplit() throws {
        let wire = bytes(Self.framed + Self.trailer)
        let expected = bytes(Self.framed + "\r\n")
        for split in 0...wire.count {
            let r = try relay(wire, splits: [split])
            #expect(r.out == expected, "split \(split)")
            #expect(r.data == bytes("helloabc"), "split \(split)")
            #expect(r.consumed == wire.count && r.done, "split \(split)")
        }
    }

    @Test("Split at every pair of offsets gives the same bytes")
    func everyPairOfSplits() throws {
        let wire = bytes(Self.framed + "A: 1\r\nB: 2\r\n\r\n")
        let expected = bytes(Self.framed + "\r\n")
        for first in 0...wire.count {
            for second in first...wire.count {
                let r = try relay(wire, splits: [first, second])
                #expect(r.out == expected, "splits \(first), \(second)")
                #expect(r.consumed == wire.count && r.done)
            }
        }
    }

    @Test("Without trailer fields the body goes out exactly as it came, byte by byte as it is fed")
    func noTrailerIsByteExact() throws {
        let wire = bytes("17\r\n{\"response\":\"x\",\"n\":1}\n\r\n0\r\n\r\n")
        let r = try relay(wire, splits: Array(1..<wire.count))
        #expect(r.out == wire)
        // Every byte before the trailer section goes out in the call that read it: nothing is held back.
        let lastChunkEnd = wire.count - 2
        #expect(r.outAfterEachCall == Array(1...lastChunkEnd) + [lastChunkEnd, wire.count])
    }

    @Test("Data and chunk framing go out in the call that read them; the trailer section adds nothing until it ends")
    func streamsUpToTheTrailer() throws {
        let wire = bytes(Self.framed + Self.trailer)
        let r = try relay(wire, splits: Array(1..<wire.count))
        let framed = Self.framed.utf8.count
        #expect(r.outAfterEachCall == Array(1...framed) + Array(repeating: framed, count: Self.trailer.utf8.count - 1)
                + [framed + 2])
    }

    @Test("Pipelined bytes after the body are neither consumed nor relayed, and a finished body relays nothing more")
    func stopsAtTheEnd() throws {
        let body = bytes("2\r\nok\r\n0\r\nX-T: 1\r\n\r\n")
        let wire = body + bytes("HTTP/1.1 200 OK\r\n")
        var decoder = ChunkedDecoder()
        var out = bytes("head")
        let consumed = try decoder.relay(wire, from: 0, to: wire.count, into: &out) { _ in }
        #expect(consumed == body.count && decoder.isDone)
        #expect(out == bytes("head2\r\nok\r\n0\r\n\r\n"))
        #expect(try decoder.relay(wire, from: consumed, to: wire.count, into: &out) { _ in Issue.record("no data") } == 0)
        #expect(out == bytes("head2\r\nok\r\n0\r\n\r\n"))
    }

    @Test("Relaying at a non-zero start copies from that start")
    func nonZeroStart() throws {
        let wire = bytes("xxxx2\r\nok\r\n0\r\nA: b\r\n\r\n")
        var decoder = ChunkedDecoder()
        var out: [UInt8] = []
        let consumed = try decoder.relay(wire, from: 4, to: wire.count, into: &out) { _ in }
        #expect(consumed == wire.count - 4)
        #expect(out == bytes("2\r\nok\r\n0\r\n\r\n"))
    }

    @Test("A refused trailer section relays nothing of the call that refused it and never ends the body",
          arguments: ["A: b\nC: d\r\n\r\n", " folded\r\n\r\n", "A : b\r\n\r\n", "A: \u{1}\r\n\r\n", "A: b\r\n\rX"])
    func refusedTrailer(trailer: String) throws {
        let framed = bytes("2\r\nok\r\n0\r\n")
        let wire = framed + bytes(trailer)
        var decoder = ChunkedDecoder()
        var out: [UInt8] = []
        #expect(try decoder.relay(wire, from: 0, to: framed.count, into: &out) { _ in } == framed.count)
        #expect(throws: HTTPParseError.self) {
            _ = try decoder.relay(wire, from: framed.count, to: wire.count, into: &out) { _ in }
        }
        #expect(out == framed)
        #expect(!decoder.isDone)
    }

    @Test("A trailer section over the limit is refused")
    func trailerTooLarge() {
        let wire = bytes("2\r\nok\r\n0\r\nX-Long: " + String(repeating: "v", count: 40) + "\r\n\r\n")
        var out: [UInt8] = []
        var decoder = ChunkedDecoder(maxTrailerBytes: 20)
        #expect(throws: HTTPParseError.self) { _ = try decoder.relay(wire, from: 0, to: wire.count, into: &out) { _ in } }
        #expect(out.isEmpty)
    }

    /// Generated bodies: random chunk sizes and extensions, 0 to 5 trailer fields among HSTS, Set-Cookie, odd
    /// casings and empty values, fed in random pieces with a pipelined response after them. The relay gives every
    /// byte before the trailer section, an empty trailer section, the data, and leaves the pipelined bytes alone.
    @Test("Generated bodies and splits relay without their trailer fields", arguments: 0..<4)
    func generated(seed: UInt64) throws {
        var rng = SplitMix64(state: 0x7472_6169_6C65_7273 &+ seed)
        for _ in 0..<250 {
            let body = GeneratedChunkedBody(using: &rng)
            let next = bytes("HTTP/1.1 204 No Content\r\n\r\n")
            let wire = body.wire + next
            var splits: [Int] = []
            for _ in 0..<Int.random(in: 0...8, using: &rng) { splits.append(Int.random(in: 0...wire.count, using: &rng)) }
            // Splits near the end of the body: inside the last-chunk line, the fields, the final CRLF.
            let tail = body.wire.count - body.trailer.count - 3
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                splits.append(Int.random(in: tail...body.wire.count, using: &rng))
            }
            splits.sort()
            let r = try relay(wire, splits: splits)
            #expect(r.out == body.relayed, "\(String(decoding: body.wire, as: UTF8.self)) split at \(splits)")
            #expect(r.data == body.data)
            #expect(r.consumed == body.wire.count && r.done)
        }
    }
}

/// A chunked body made from a generator, with what a relay of it must give.
struct GeneratedChunkedBody {
    /// The body as an upstream sends it.
    var wire: [UInt8] = []
    /// Its trailer section, final CRLF included.
    var trailer: [UInt8] = []
    /// Its data.
    var data: [UInt8] = []

    /// The body as a client must receive it: the trailer section emptied.
    var relayed: [UInt8] { Array(wire[..<(wire.count - trailer.count)]) + bytes("\r\n") }

    static let fields = [
        "Strict-Transport-Security: max-age=0", "strict-transport-security:max-age=63072000; includeSubDomains",
        "Set-Cookie: session=stolen; Path=/", "SET-COOKIE: a=b", "sEt-CoOkIe:", "X-Upstream-Secret: 10.0.0.7",
        "Content-Length: 5", "Transfer-Encoding: chunked", "Connection: close", "X-Empty:", "Expires: \t0\t",
        "Www-Authenticate: Basic realm=\"x\"", "Server-Timing: db;dur=53",
    ]
    static let extensions = [";a", ";name=value", ";q=\"quoted; \\\" str\"", ";a=1;b;c=\"\"", ";!#$%&'*+-.^_`|~=x"]

    init<G: RandomNumberGenerator>(using rng: inout G) {
        for _ in 0..<Int.random(in: 0...5, using: &rng) {
            let size = [1, 2, 15, 16, 255, 300].randomElement(using: &rng)!
            let chunk = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var line = String(size, radix: 16, uppercase: Bool.random(using: &rng))
            if Int.random(in: 0..<3, using: &rng) == 0 { line = "00" + line }
            if Bool.random(using: &rng) { line += Self.extensions.randomElement(using: &rng)! }
            wire += bytes(line + "\r\n") + chunk + bytes("\r\n")
            data += chunk
        }
        var last = String(repeating: "0", count: Int.random(in: 1...3, using: &rng))
        if Bool.random(using: &rng) { last += Self.extensions.randomElement(using: &rng)! }
        wire += bytes(last + "\r\n")
        for _ in 0..<Int.random(in: 0...5, using: &rng) {
            trailer += bytes(Self.fields.randomElement(using: &rng)! + "\r\n")
        }
        trailer += bytes("\r\n")
        wire += trailer
    }
}
