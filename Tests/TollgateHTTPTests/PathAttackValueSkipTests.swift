import Testing
@testable import TollgateHTTP

/// The eight-bytes-at-a-time skip over a header value's plain bytes, checked for its exact result (not only "never
/// too far"): every pair of adjacent byte values in every position of two words, every triple of
/// boundary bytes in every position of the word, random words and bounds; and through the parser, every byte value
/// in every position of a 1-24 byte value (the line at three offsets from an eight-byte boundary), and garbage
/// after the parse's end.
@Suite struct PathAttackValueSkipTests {
    /// SP, VCHAR, obs-text: what the word loop may pass over.
    static func plain(_ b: UInt8) -> Bool { b >= 0x20 && b != 0x7F }

    /// What the skip must return: the first byte in `from..<stop` that is not plain when it lies in a whole word,
    /// else the start of the last (partial) word.
    static func expected(_ buffer: [UInt8], from: Int, stop: Int) -> Int {
        let wholeEnd = from + (stop - from) / 8 * 8
        if let first = buffer[from..<wholeEnd].firstIndex(where: { !plain($0) }) { return first }
        return wholeEnd
    }

    static func check(_ buffer: [UInt8], from: Int, stop: Int) -> Bool {
        let got = HeadScanner.skipPlainValueBytes(buffer.span, from: from, stop: stop)
        let want = expected(buffer, from: from, stop: stop)
        if got != want { Issue.record("\(buffer) from \(from) stop \(stop): \(got), expected \(want)") }
        return got == want
    }

    @Test func everyAdjacentPairOfByteValues() {
        // Borrows run from a byte into the one above it: every pair of byte values side by side, at every place in
        // two words (across their boundary too), over the lowest and highest plain fillers.
        for filler: UInt8 in [0x20, 0xFF] {
            var buffer = [UInt8](repeating: filler, count: 16)
            for at in 0..<15 {
                for a in 0...255 {
                    for b in 0...255 {
                        buffer[at] = UInt8(a)
                        buffer[at + 1] = UInt8(b)
                        if !Self.check(buffer, from: 0, stop: buffer.count) { return }
                    }
                }
                buffer[at] = filler
                buffer[at + 1] = filler
            }
        }
    }

    @Test func everyTripleOfBoundaryBytesInEveryPosition() {
        let edges: [UInt8] = [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x21, 0x5F, 0x60, 0x7E, 0x7F, 0x80, 0x9F,
                              0xA0, 0xFE, 0xFF]
        var buffer = [UInt8](repeating: 0x41, count: 8)
        for at in 0..<6 {
            for a in edges {
                for b in edges {
                    for c in edges {
                        buffer[at] = a
                        buffer[at + 1] = b
                        buffer[at + 2] = c
                        if !Self.check(buffer, from: 0, stop: 8) { return }
                    }
                }
            }
            buffer = [UInt8](repeating: 0x41, count: 8)
        }
    }

    @Test func randomWordsAndBounds() {
        var rng = SplitMix64(state: 0x736B_6970)
        for _ in 0..<50_000 {
            let count = Int(rng.next() % 40)
            let buffer = (0..<count).map { _ -> UInt8 in
                switch rng.next() % 4 {
                case 0: return UInt8(truncatingIfNeeded: rng.next())
                case 1: return [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x7F][Int(rng.next() % 6)]
                default: return UInt8(0x20 + rng.next() % 0x5F)
                }
            }
            let from = Int(rng.next() % UInt64(count + 1))
            let stop = from + Int(rng.next() % UInt64(count - from + 1))
            if !Self.check(buffer, from: from, stop: stop) { return }
        }
    }

    /// Whether the parser takes `value` as a header value, and the value it kept.
    static func parse(_ value: [UInt8], pad: Int) -> (ParseResult, [UInt8]?) {
        let before = Array("GET /\(String(repeating: "a", count: pad)) HTTP/1.1\r\nHost: h\r\nX-V: ".utf8)
        let buffer = before + value + Array("\r\nX-W: w\r\n\r\n".utf8)
        var head = RequestHead()
        let result = RequestParser(limits: HTTPLimits()).parse(buffer, from: 0, to: buffer.count, into: &head)
        guard result == .complete, let field = head.headers.first(where: { buffer[$0.name] == Array("X-V".utf8)[...] })
        else { return (result, nil) }
        return (result, Array(buffer[field.value]))
    }

    @Test func everyByteInEveryPositionOfAValue() {
        // Through the parser: one byte of every value at every position of a 1-24 byte value, the line starting at
        // every offset from a word boundary. Accepted exactly when the byte rule accepts it (HTAB, SP, VCHAR,
        // obs-text), and then kept as sent (less the OWS at its ends).
        for length in 1...24 {
            for pad in [0, 3, 5] {
                for at in 0..<length {
                    for value in 0...255 {
                        var bytes = [UInt8](repeating: 0x76, count: length)
                        bytes[at] = UInt8(value)
                        let (result, kept) = Self.parse(bytes, pad: pad)
                        let allowed = UInt8(value) == 0x09 || Self.plain(UInt8(value))
                        if allowed {
                            var trimmed = bytes[...]
                            while let f = trimmed.first, f == 0x20 || f == 0x09 { trimmed.removeFirst() }
                            while let l = trimmed.last, l == 0x20 || l == 0x09 { trimmed.removeLast() }
                            if kept != Array(trimmed) {
                                Issue.record("\(bytes) pad \(pad): \(result), kept \(String(describing: kept))")
                                return
                            }
                        } else if status(result) != 400 {
                            Issue.record("\(bytes) pad \(pad): \(result), expected 400")
                            return
                        }
                    }
                }
            }
        }
    }

    @Test func theSkipNeverReadsPastTheParseEnd() {
        // A complete-looking head whose bytes after `to` are a NUL, a bare LF, a CR LF CR LF: the parse of the
        // bytes up to `to` must ask for more (or refuse only for what lies before `to`), never finish or refuse
        // because of what follows.
        let head = Array("GET / HTTP/1.1\r\nHost: h\r\nX-Long: ".utf8) + [UInt8](repeating: 0x61, count: 40)
        for garbage: [UInt8] in [[0x00], [0x0A], [0x0D, 0x0A, 0x0D, 0x0A], [0x7F], [0x01]] {
            for cut in (head.count - 24)...head.count {
                let buffer = Array(head[..<cut]) + garbage + [UInt8](repeating: 0x00, count: 16)
                var parsed = RequestHead()
                let result = RequestParser(limits: HTTPLimits()).parse(buffer, from: 0, to: cut, into: &parsed)
                #expect(result == .needMore, "cut \(cut) before \(garbage): \(result)")
            }
        }
    }
}
