import Testing
@testable import TollgateHTTP

/// `ChunkedDecoder.relay` checked against a model written apart from the decoder: the whole input parsed at once
/// by a plain recursive reading of RFC 9112 7.1 (with the decoder's documented limits), which says where the body's
/// last-chunk line ends, where the body ends, or at which byte it stops being a chunked body. Whatever the pieces
/// the input comes in, the relay must give every byte up to the last-chunk line in the call that read it, then a
/// bare CRLF once the body ends, and nothing of a call that refused.
@Suite("Chunked relay against a model")
struct ChunkedRelayModelTests {
    // MARK: - The model

    /// What the model makes of a whole input.
    enum Verdict: Equatable {
        /// A whole body: its last-chunk line ends at `lastChunkEnd`, the body at `end`.
        case complete(lastChunkEnd: Int, end: Int, data: [UInt8])
        /// A valid start of a body that has not ended yet.
        case incomplete(lastChunkEnd: Int?, data: [UInt8])
        /// Not a chunked body from the byte at `at` on.
        case invalid(at: Int, lastChunkEnd: Int?)
    }

    /// The model: a strict chunked grammar read over the whole input, one position at a time.
    struct Model {
        enum Stop: Error { case incomplete, invalid(Int) }

        let input: [UInt8]
        let maxLine: Int
        let maxTrailer: Int
        var i: Int
        var data: [UInt8] = []
        var lastChunkEnd: Int?

        static func verdict(_ input: [UInt8], from start: Int = 0, maxLine: Int = 4096, maxTrailer: Int = 8192)
            -> Verdict {
            var model = Model(input: input, maxLine: maxLine, maxTrailer: maxTrailer, i: start)
            do throws(Stop) {
                let end = try model.body()
                return .complete(lastChunkEnd: model.lastChunkEnd!, end: end, data: model.data)
            } catch {
                switch error {
                case .incomplete: return .incomplete(lastChunkEnd: model.lastChunkEnd, data: model.data)
                case .invalid(let at): return .invalid(at: at, lastChunkEnd: model.lastChunkEnd)
                }
            }
        }

        static func isTchar(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
        /// HTAB, SP, VCHAR, obs-text.
        static func isValueByte(_ b: UInt8) -> Bool { b == 0x09 || (b >= 0x20 && b != 0x7F) }
        static func hex(_ b: UInt8) -> Int? { Int(String(UnicodeScalar(b)), radix: 16) }

        mutating func next() throws(Stop) -> UInt8 {
            guard i < input.count else { throw .incomplete }
            i += 1
            return input[i - 1]
        }
        /// The byte just read is where the input stops being a body.
        func bad() -> Stop { .invalid(i - 1) }

        mutating func body() throws(Stop) -> Int {
            while true {
                let size = try chunkLine()
                if size == 0 { break }
                for _ in 0..<size { data.append(try next()) }
                guard try next() == 0x0D, try next() == 0x0A else { throw bad() }
            }
            lastChunkEnd = i
            try trailerSection()
            return i
        }

        /// A chunk-size line with its extensions and CRLF; returns the size.
        mutating func chunkLine() throws(Stop) -> Int {
            var lineBytes = 0
            func lineNext(_ m: inout Model) throws(Stop) -> UInt8 {
                let b = try m.next()
                if b != 0x0D {
                    lineBytes += 1
                    if lineBytes > m.maxLine { throw m.bad() }
                }
                return b
            }
            var size = 0, digits = 0
            var c = try lineNext(&self)
            while let h = Self.hex(c) {
                digits += 1
                if digits > 15 { throw bad() }
                size = size * 16 + h
                c = try lineNext(&self)
            }
            if digits == 0 { throw bad() }
            while c == UInt8(ascii: ";") {
                c = try lineNext(&self)
                guard Self.isTchar(c) else { throw bad() }
                repeat { c = try lineNext(&self) } while Self.isTchar(c)
                if c == UInt8(ascii: "=") {
                    c = try lineNext(&self)
                    if Self.isTchar(c) {
                        repeat { c = try lineNext(&self) } while Self.isTchar(c)
                    } else if c == UInt8(ascii: "\"") {
                        while true {
                            c = try lineNext(&self)
                            if c == UInt8(ascii: "\"") { break }
                            if c == UInt8(ascii: "\\") { c = try lineNext(&self) }
                            guard Self.isValueByte(c) else { throw bad() }
                        }
                        c = try lineNext(&self)
                    } else {
                        throw bad()
                    }
                }
            }
            guard c == 0x0D else { throw bad() }
            guard try next() == 0x0A else { throw bad() }
            return size
        }

        /// Trailer fields and the final CRLF, the whole section bounded by `maxTrailer` bytes.
        mutating func trailerSection() throws(Stop) {
            let start = i
            func trailerNext(_ m: inout Model) throws(Stop) -> UInt8 {
                let b = try m.next()
                if m.i - start > m.maxTrailer { throw m.bad() }
                return b
            }
            while true {
                var c = try trailerNext(&self)
                if c == 0x0D {
                    guard try trailerNext(&self) == 0x0A else { throw bad() }
                    return
                }
                guard Self.isTchar(c) else { throw bad() }
                repeat { c = try trailerNext(&self) } while Self.isTchar(c)
                guard c == UInt8(ascii: ":") else { throw bad() }
                repeat { c = try trailerNext(&self) } while Self.isValueByte(c)
                guard c == 0x0D, try trailerNext(&self) == 0x0A else { throw bad() }
            }
        }
    }

    // MARK: - Relay runs checked against the model

    /// Relays `input[start...]` in calls ending at `ends` (then at the end of the input) and checks every call's
    /// output, the data, what was consumed and where a refusal came against the model's verdict.
    static func check(_ input: [UInt8], from start: Int = 0, ends: [Int], maxLine: Int = 4096,
                      maxTrailer: Int = 8192, reuse decoder: ChunkedDecoder? = nil,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        let verdict = Model.verdict(input, from: start, maxLine: maxLine, maxTrailer: maxTrailer)
        var decoder = decoder ?? ChunkedDecoder(maxChunkLineBytes: maxLine, maxTrailerBytes: maxTrailer)
        let prefix = bytes("prev")
        var out = prefix
        var data: [UInt8] = []
        var position = start
        let describe = { "\(String(decoding: input[start...], as: UTF8.self).debugDescription) at \(ends)" }
        for end in ends.filter({ $0 > start }) + [input.count] where end >= position {
            let callStart = position
            let before = out.count
            do {
                let n = try decoder.relay(input, from: callStart, to: end, into: &out) { data += input[$0] }
                position += n
            } catch {
                // A refusal: the model must put the first bad byte inside this call, and the call adds nothing.
                guard case .invalid(let at, let lastChunkEnd) = verdict else {
                    Issue.record("refused a body the model accepts so far: \(describe())", sourceLocation: sourceLocation)
                    return
                }
                #expect(at >= callStart && at < end, "refused in \(callStart)..<\(end), model at \(at): \(describe())",
                        sourceLocation: sourceLocation)
                #expect(out.count == before, "a refusing call appended: \(describe())", sourceLocation: sourceLocation)
                let sent = min(callStart, lastChunkEnd ?? callStart)
                #expect(out == prefix + input[start..<sent], "\(describe())", sourceLocation: sourceLocation)
                #expect(!decoder.isDone, sourceLocation: sourceLocation)
                // Refused for good: a second try refuses again and appends nothing.
                #expect(throws: HTTPParseError.self, sourceLocation: sourceLocation) {
                    _ = try decoder.relay(input, from: callStart, to: input.count, into: &out) { _ in }
                }
                #expect(out.count == before, sourceLocation: sourceLocation)
                return
            }
            // Nothing held back: all read so far up to the last-chunk line is out, the empty trailer section once
            // the body ended, and nothing else.
            switch verdict {
            case .complete(let lastChunkEnd, let bodyEnd, _):
                let due = decoder.isDone ? lastChunkEnd - start + 2 : min(end, lastChunkEnd) - start
                #expect(out.count - prefix.count == due, "after \(callStart)..<\(end): \(describe())",
                        sourceLocation: sourceLocation)
                #expect(decoder.isDone == (end >= bodyEnd), sourceLocation: sourceLocation)
            case .incomplete(let lastChunkEnd, _), .invalid(_, let lastChunkEnd):
                #expect(out.count - prefix.count == min(end, lastChunkEnd ?? end) - start,
                        "after \(callStart)..<\(end): \(describe())", sourceLocation: sourceLocation)
                #expect(!decoder.isDone, sourceLocation: sourceLocation)
            }
            if decoder.isDone { break }
        }
        switch verdict {
        case .complete(let lastChunkEnd, let bodyEnd, let expected):
            #expect(decoder.isDone && position == bodyEnd, "\(describe())", sourceLocation: sourceLocation)
            #expect(out == prefix + input[start..<lastChunkEnd] + bytes("\r\n"), "\(describe())",
                    sourceLocation: sourceLocation)
            #expect(data == expected, sourceLocation: sourceLocation)
            // A finished body relays nothing more, whatever follows it.
            let after = out
            var more: [UInt8] = []
            let n = try? decoder.relay(input, from: position, to: input.count, into: &out) { more += input[$0] }
            #expect(n == 0 && more.isEmpty && out == after, sourceLocation: sourceLocation)
        case .incomplete(let lastChunkEnd, let expected):
            #expect(!decoder.isDone && position == input.count, sourceLocation: sourceLocation)
            #expect(out == prefix + input[start..<(lastChunkEnd ?? input.count)], "\(describe())",
                    sourceLocation: sourceLocation)
            #expect(data == expected, sourceLocation: sourceLocation)
        case .invalid:
            Issue.record("accepted a body the model refuses: \(describe())", sourceLocation: sourceLocation)
        }
    }

    /// Every single split, every 1-byte feed, and `extra` random sets of splits.
    static func checkAllSplits<G: RandomNumberGenerator>(_ input: [UInt8], from start: Int = 0, maxLine: Int = 4096,
                                                         maxTrailer: Int = 8192, extra: Int = 4, using rng: inout G,
                                                         sourceLocation: SourceLocation = #_sourceLocation) {
        for split in start...input.count {
            check(input, from: start, ends: [split], maxLine: maxLine, maxTrailer: maxTrailer,
                  sourceLocation: sourceLocation)
        }
        if input.count > start {
            check(input, from: start, ends: Array(start + 1..<input.count), maxLine: maxLine, maxTrailer: maxTrailer,
                  sourceLocation: sourceLocation)
        }
        for _ in 0..<extra {
            let ends = (0..<Int.random(in: 1...6, using: &rng)).map { _ in Int.random(in: start...input.count, using: &rng) }
            check(input, from: start, ends: ends.sorted(), maxLine: maxLine, maxTrailer: maxTrailer,
                  sourceLocation: sourceLocation)
        }
    }

    // MARK: - The model itself

    @Test("The model reads plain bodies as RFC 9112 says")
    func modelSanity() {
        #expect(Model.verdict(bytes("0\r\n\r\n")) == .complete(lastChunkEnd: 3, end: 5, data: []))
        #expect(Model.verdict(bytes("2;a=\"b\"\r\nok\r\n000;x\r\nA: b\r\n\r\nrest"))
                == .complete(lastChunkEnd: 20, end: 28, data: bytes("ok")))
        #expect(Model.verdict(bytes("2\r\nok\r\n0\r\nA")) == .incomplete(lastChunkEnd: 10, data: bytes("ok")))
        #expect(Model.verdict(bytes("2\r\nok\n")) == .invalid(at: 5, lastChunkEnd: nil))
        #expect(Model.verdict(bytes("0\r\n folded\r\n\r\n")) == .invalid(at: 3, lastChunkEnd: 3))
        #expect(Model.verdict(bytes("0\r\nA: b\r\n\r\n"), maxTrailer: 8) == .complete(lastChunkEnd: 3, end: 11, data: []))
        #expect(Model.verdict(bytes("0\r\nA: bc\r\n\r\n"), maxTrailer: 8) == .invalid(at: 11, lastChunkEnd: 3))
    }

    // MARK: - Hand-picked bodies at every split

    static let handPicked: [String] = [
        "0\r\n\r\n",
        "0;a=b\r\n\r\n",
        "0;a=\"x;y\\\"z\";b\r\nX: 1\r\n\r\n",
        "000\r\n\r\n",
        "000000000000000\r\n\r\n",
        "0000000000000000\r\n\r\n",
        "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
        "aB\r\n" + String(repeating: "x", count: 0xab) + "\r\n0\r\nT: v\r\n\r\n",
        "2\r\nok\r\n0\r\nStrict-Transport-Security: max-age=0\r\nSet-Cookie: a=b\r\n\r\n",
        "2\r\nok\r\n0\r\nX:\r\nY:  \t v \t\r\n\r\n",
        "2\r\nok\r\n0\r\nX: \u{80}\u{FF}\r\n\r\n",
        // Pipelined: a next response right after the body, in the same read.
        "2\r\nok\r\n0\r\nA: b\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "2\r\nok\r\n0\r\n\r\n0\r\n\r\n",
        // Refused: bare LF or CR, NUL, obs-fold, whitespace before the colon, DEL, a second CRLF missing.
        "2\r\nok\r\n0\r\nA: b\nC: d\r\n\r\n",
        "2\r\nok\r\n0\r\nA: b\rC: d\r\n\r\n",
        "2\r\nok\r\n0\n\r\n",
        "2\r\nok\r\n0\r\r\n\r\n",
        "2\r\nok\r\n0\r\n\n",
        "2\r\nok\r\n0\r\n\r\r",
        "2\r\nok\r\n0\r\nA: b\0c\r\n\r\n",
        "2\r\nok\r\n0\r\n\0\r\n",
        "2\r\nok\r\n0\r\nA: b\r\n folded\r\n\r\n",
        "2\r\nok\r\n0\r\nA: b\r\n\tfolded\r\n\r\n",
        "2\r\nok\r\n0\r\nA : b\r\n\r\n",
        "2\r\nok\r\n0\r\nA: \u{7F}\r\n\r\n",
        "2\r\nok\r\n0\r\n:b\r\n\r\n",
        "2\r\nok\r\n0\r\nA\r\n\r\n",
        "2\r\nok\r\n0 \r\n\r\n",
        "2\r\nok\r\n0;\r\n\r\n",
        "2\r\nok\r\n0;a=\r\n\r\n",
        "2\r\nok\r\n;0\r\n\r\n",
        "2\r\nok\r\n0x0\r\n\r\n",
        "2\r\nokX\r\n0\r\n\r\n",
        "3\r\nok\r\n0\r\n\r\n",
        "\r\n0\r\n\r\n",
        "-0\r\n\r\n",
    ]

    @Test("Hand-picked bodies, whole, refused or cut, relay as the model says at every split and byte by byte")
    func handPickedBodies() {
        var rng = SplitMix64(state: 0x6861_6E64)
        for body in Self.handPicked {
            let input = bytes(body)
            Self.checkAllSplits(input, extra: 8, using: &rng)
            // From a non-zero start: bytes before it belong to someone else and are never copied.
            Self.checkAllSplits(bytes("HTTP/1.1 200 OK\r\n\r\n") + input, from: 19, extra: 2, using: &rng)
            // Cut short anywhere: a valid start of a body relays all it can, nothing past the last-chunk line.
            for cut in 0..<input.count {
                Self.check(Array(input[..<cut]), ends: Array(1..<max(cut, 1)))
            }
        }
    }

    @Test("A trailer section of exactly the limit is accepted and dropped; one byte over is refused at that byte",
          arguments: [16, 8192])
    func trailerAtTheLimit(limit: Int) {
        let framed = "2\r\nok\r\n0;e=1\r\n"
        // "X: " + value + CRLF + CRLF
        let atLimit = "X: " + String(repeating: "v", count: limit - 7) + "\r\n\r\n"
        let over = "X: " + String(repeating: "v", count: limit - 6) + "\r\n\r\n"
        #expect(atLimit.utf8.count == limit && over.utf8.count == limit + 1)
        let accepted = bytes(framed + atLimit + "HTTP/1.1")
        let refused = bytes(framed + over)
        #expect(Model.verdict(accepted, maxTrailer: limit)
                == .complete(lastChunkEnd: framed.utf8.count, end: framed.utf8.count + limit, data: bytes("ok")))
        #expect(Model.verdict(refused, maxTrailer: limit) == .invalid(at: refused.count - 1, lastChunkEnd: framed.utf8.count))
        var rng = SplitMix64(state: UInt64(limit))
        if limit < 100 {
            Self.checkAllSplits(accepted, maxTrailer: limit, using: &rng)
            Self.checkAllSplits(refused, maxTrailer: limit, using: &rng)
        } else {
            for ends in [[], [framed.utf8.count], [framed.utf8.count + 1], [refused.count - 1], [accepted.count - 8]] {
                Self.check(accepted, ends: ends, maxTrailer: limit)
                Self.check(refused, ends: ends, maxTrailer: limit)
            }
            // The proxy's own decoder has this limit.
            var decoder = ChunkedDecoder()
            var out: [UInt8] = []
            #expect(throws: HTTPParseError.self) {
                _ = try decoder.relay(refused, from: 0, to: refused.count, into: &out) { _ in }
            }
            #expect(out.isEmpty)
        }
    }

    @Test("A chunk-size line of exactly the limit is accepted, one over refused, the last-chunk line included")
    func chunkLineAtTheLimit() {
        var rng = SplitMix64(state: 0x6C69_6E65)
        for body in ["2;abcd\r\nok\r\n0\r\n\r\n", "2;abcde\r\nok\r\n0\r\n\r\n", "2\r\nok\r\n0;abcd\r\nA: b\r\n\r\n",
                     "2\r\nok\r\n0;abcde\r\nA: b\r\n\r\n", "0000002\r\nok\r\n0000000\r\n\r\n",
                     "00000002\r\nok\r\n0\r\n\r\n"] {
            Self.checkAllSplits(bytes(body), maxLine: 7, using: &rng)
        }
    }

    @Test("A decoder reset after a body, after a refusal or in the middle of a trailer section relays the next body whole")
    func reusedAfterReset() {
        let first = bytes("2\r\nok\r\n0\r\nA: " + String(repeating: "v", count: 10) + "\r\n\r\n")
        let second = bytes("3\r\nabc\r\n0\r\nB: " + String(repeating: "w", count: 10) + "\r\n\r\n")
        for cut in [first.count, first.count - 1, 12, 10, 5] {
            var decoder = ChunkedDecoder(maxTrailerBytes: 20)
            var out: [UInt8] = []
            _ = try? decoder.relay(first, from: 0, to: cut, into: &out) { _ in }
            decoder.reset()
            // The trailer count of the first body does not count against the second's limit.
            Self.check(second, ends: [], maxTrailer: 20, reuse: decoder)
            Self.check(second, ends: Array(1..<second.count), maxTrailer: 20, reuse: decoder)
        }
        var refused = ChunkedDecoder()
        var out: [UInt8] = []
        #expect(throws: HTTPParseError.self) { _ = try refused.relay(bytes("2\r\nok\n"), from: 0, to: 6, into: &out) { _ in } }
        refused.reset()
        Self.check(second, ends: [14, 15], reuse: refused)
    }

    @Test("Generated and mutated bodies relay as the model says at every split", arguments: 0..<4)
    func generatedAndMutated(seed: UInt64) {
        var rng = SplitMix64(state: 0x6D6F_6465_6C00 &+ seed)
        for _ in 0..<150 {
            let small = Bool.random(using: &rng)
            let maxLine = small ? Int.random(in: 3...12, using: &rng) : 4096
            let maxTrailer = small ? Int.random(in: 2...40, using: &rng) : 8192
            var input = Self.generate(using: &rng)
            for _ in 0..<Int.random(in: 0...2, using: &rng) { Self.mutate(&input, using: &rng) }
            if Bool.random(using: &rng) { input += bytes("HTTP/1.1 204 No Content\r\n\r\n") }
            Self.checkAllSplits(input, maxLine: maxLine, maxTrailer: maxTrailer, extra: 3, using: &rng)
        }
    }

    /// A valid body: chunks of odd-case hex sizes with leading zeros and extensions, a last-chunk line with or
    /// without extensions, 0 to 4 trailer fields.
    static func generate<G: RandomNumberGenerator>(using rng: inout G) -> [UInt8] {
        var wire: [UInt8] = []
        let extensions = [";a", ";n=v", ";q=\"x; \\\" y\"", ";a=1;b;c=\"\""]
        for _ in 0..<Int.random(in: 0...3, using: &rng) {
            let size = Int.random(in: 1...20, using: &rng)
            var line = String(repeating: "0", count: Int.random(in: 0...2, using: &rng))
                + String(size, radix: 16, uppercase: Bool.random(using: &rng))
            if Int.random(in: 0..<3, using: &rng) == 0 { line += extensions.randomElement(using: &rng)! }
            wire += bytes(line + "\r\n")
            wire += (0..<size).map { _ in [UInt8(ascii: "x"), 0x0D, 0x0A, 0x00, 0x30, 0xFF].randomElement(using: &rng)! }
            wire += bytes("\r\n")
        }
        var last = String(repeating: "0", count: Int.random(in: 1...3, using: &rng))
        if Bool.random(using: &rng) { last += extensions.randomElement(using: &rng)! }
        wire += bytes(last + "\r\n")
        let fields = ["A: b", "Strict-Transport-Security: max-age=0", "set-cookie:x=y", "X-Empty:", "T: \t1\t"]
        for _ in 0..<Int.random(in: 0...4, using: &rng) { wire += bytes(fields.randomElement(using: &rng)! + "\r\n") }
        wire += bytes("\r\n")
        return wire
    }

    /// Replaces, inserts or removes a byte, or folds a line, mostly near the end where the trailer section is.
    static func mutate<G: RandomNumberGenerator>(_ wire: inout [UInt8], using rng: inout G) {
        guard !wire.isEmpty else { return }
        let candidates: [UInt8] = [0x0D, 0x0A, 0x00, 0x20, 0x09, 0x3A, 0x3B, 0x22, 0x5C, 0x3D, 0x47, 0x30, 0x61, 0x7F,
                                   0xFF]
        let at = Bool.random(using: &rng) ? Int.random(in: 0..<wire.count, using: &rng)
            : Int.random(in: max(0, wire.count - 16)..<wire.count, using: &rng)
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: wire[at] = candidates.randomElement(using: &rng)!
        case 1: wire.insert(candidates.randomElement(using: &rng)!, at: at)
        case 2: wire.remove(at: at)
        default: wire.insert(contentsOf: bytes("\r\n "), at: at)
        }
    }
}
