import Testing
@testable import TollgateHTTP

/// The implementation before the word compare.
private func reference(_ buffer: [UInt8], _ range: Range<Int>) -> Result<HTTPVersion, HTTPParseError> {
    if HTTPBytes.equals(buffer, range, "HTTP/1.1") { return .success(.http11) }
    if HTTPBytes.equals(buffer, range, "HTTP/1.0") { return .success(.http10) }
    if range.count == 8, HTTPBytes.hasPrefix(buffer, range, "HTTP/"),
       ASCII.isDigit(buffer[range.lowerBound &+ 5]), buffer[range.lowerBound &+ 6] == 0x2E,
       ASCII.isDigit(buffer[range.lowerBound &+ 7]) {
        return .failure(HTTPParseError(status: 505, reason: "HTTP version not supported"))
    }
    return .failure(HTTPParseError(status: 400, reason: "Malformed HTTP version"))
}

/// H T P / . digits, lowercase h t p, NUL, SP, CR, LF, 0x80, 0xFF.
private let alphabet: [UInt8] = Array("HTP/.0123456789htp".utf8) + [0x00, 0x20, 0x0D, 0x0A, 0x80, 0xFF]
private let v11 = Array("HTTP/1.1".utf8)
private let v10 = Array("HTTP/1.0".utf8)

/// Compares both at `offset` in a buffer with `tail` bytes after the token (0: the token ends the buffer);
/// the bytes around the token are `fill`. Counts disagreements in `failures` (the first few recorded as issues).
private func check(_ token: [UInt8], offset: Int, tail: Int, fill: UInt8, failures: inout Int) {
    var buffer = [UInt8](repeating: fill, count: offset + token.count + tail)
    buffer.replaceSubrange(offset..<(offset + token.count), with: token)
    let range = offset..<(offset + token.count)
    let new = RequestParser.parseVersion(buffer, range)
    let old = reference(buffer, range)
    if new != old {
        failures += 1
        if failures <= 5 { Issue.record("token \(token) at \(offset) tail \(tail): new \(new), old \(old)") }
    }
}

/// `RequestParser.parseVersion` (one eight-byte word against the two versions) against the byte-by-byte comparison
/// it replaced, kept here verbatim as the reference: the same result (version, or status and reason) for every
/// token generated below, at every offset of a buffer, the buffer ending right after the token included.
@Suite struct LastAttackVersionTests {
    @Test func everyShortTokenOverTheAlphabet() {
        // Lengths 0 to 4, every token; at the buffer's start, an odd offset and its end.
        var failures = 0
        var tokens: [[UInt8]] = [[]]
        var all: [[UInt8]] = [[]]
        for _ in 1...4 {
            tokens = tokens.flatMap { t in alphabet.map { t + [$0] } }
            all += tokens
        }
        for token in all {
            for (offset, tail) in [(0, 0), (3, 0), (0, 5), (7, 1)] {
                check(token, offset: offset, tail: tail, fill: 0x48, failures: &failures)
            }
        }
        #expect(failures == 0)
    }

    @Test func everyEightByteTokenNearTheVersions() {
        // Each byte from a set around both versions' byte there (the byte, the other version's, its case and its
        // top bit flipped, NUL, and in the digits' places '9' and '2'): the product of the sets, at the end of a
        // buffer and past an odd offset.
        var failures = 0
        let sets: [[UInt8]] = (0..<8).map { k in
            var s: [UInt8] = []
            let digits: [UInt8] = k == 5 || k == 7 ? [0x39, 0x32] : []
            for b in [v11[k], v10[k], v11[k] ^ 0x20, v11[k] ^ 0x80, 0x00] + digits where !s.contains(b) { s.append(b) }
            return s
        }
        var token = [UInt8](repeating: 0, count: 8)
        var accepted = 0
        func walk(_ k: Int) {
            if k == 8 {
                check(token, offset: 5, tail: 0, fill: 0x31, failures: &failures)
                if case .success = RequestParser.parseVersion(token, 0..<8) { accepted += 1 }
                return
            }
            for b in sets[k] {
                token[k] = b
                walk(k + 1)
            }
        }
        walk(0)
        #expect(failures == 0)
        #expect(accepted == 2)
    }

    @Test func oneAndTwoByteChangesAtEveryOffset() {
        var failures = 0
        for base in [v11, v10] {
            var tokens: [[UInt8]] = []
            // Every byte value in every position.
            for k in 0..<8 {
                for b in 0...255 {
                    var t = base
                    t[k] = UInt8(b)
                    tokens.append(t)
                }
            }
            // Every pair of positions, each from the alphabet.
            for j in 0..<8 {
                for k in (j + 1)..<8 {
                    for a in alphabet {
                        for b in alphabet {
                            var t = base
                            t[j] = a
                            t[k] = b
                            tokens.append(t)
                        }
                    }
                }
            }
            // Every pair of bits of the word.
            for i in 0..<64 {
                for j in i..<64 {
                    var t = base
                    t[i / 8] ^= 1 << UInt8(i % 8)
                    if j != i { t[j / 8] ^= 1 << UInt8(j % 8) }
                    tokens.append(t)
                }
            }
            for (n, token) in tokens.enumerated() {
                // Offsets 0 to 15 cover every alignment; the tail is 0 (token ends the buffer), 1 or 8.
                let offset = n % 16
                for tail in [0, 1, 8] {
                    check(token, offset: offset, tail: tail, fill: 0x2E, failures: &failures)
                }
            }
            // The unchanged version at every offset and fill (a fill that would complete a shorter or longer
            // read must not matter).
            for offset in 0..<24 {
                for fill in alphabet {
                    check(base, offset: offset, tail: 0, fill: fill, failures: &failures)
                    check(base, offset: offset, tail: 3, fill: fill, failures: &failures)
                }
            }
        }
        #expect(failures == 0)
    }

    @Test func lengthsFiveToTenAroundTheVersions() {
        // Cut short, extended at either end by one or two alphabet bytes, or a window of a longer run.
        var failures = 0
        for base in [v11, v10] {
            var tokens: [[UInt8]] = []
            for n in 5...7 { tokens.append(Array(base.prefix(n))); tokens.append(Array(base.suffix(n))) }
            for a in alphabet {
                tokens.append(base + [a])
                tokens.append([a] + base)
                tokens.append(Array(base.prefix(7)) + [a])
                for b in alphabet {
                    tokens.append(base + [a, b])
                    tokens.append([a] + base + [b])
                    tokens.append([a, b] + base)
                    tokens.append(Array(base.prefix(5)) + [a, b])
                    tokens.append(Array(base.prefix(6)) + [a, b])
                }
            }
            for (n, token) in tokens.enumerated() {
                for tail in [0, 2] {
                    check(token, offset: n % 16, tail: tail, fill: 0x31, failures: &failures)
                }
            }
            // A version inside a longer token is no version; its eight bytes alone are.
            for offset in 0..<9 {
                let run = Array("HTTP/1.1HTTP/1.0".utf8)
                let window = Array(run[offset..<(offset + 8)])
                check(window, offset: offset, tail: 0, fill: 0x20, failures: &failures)
                check(window + [0x31], offset: offset, tail: 0, fill: 0x20, failures: &failures)
            }
        }
        #expect(failures == 0)
    }

    @Test func statusLinesWithEveryOneByteChange() {
        // Through the response parser: exactly the two versions pass, everything else is a 502.
        for base in [v11, v10] {
            for k in 0..<8 {
                for b in 0...255 {
                    var token = base
                    token[k] = UInt8(b)
                    let raw = token + Array(" 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)
                    var head = ResponseHead()
                    let result = ResponseParser().parse(raw, from: 0, to: raw.count, requestWasHead: false, into: &head)
                    // Exactly the two versions complete; anything else is refused with 502 (a control byte by
                    // the line scanner before the version is read, the rest as an unsupported version).
                    switch (reference(token, 0..<8), result) {
                    case (.success(let v), .complete): #expect(head.version == v)
                    case (.failure, .invalid(let e)): #expect(e.status == 502, "\(token)")
                    default: Issue.record("\(token): \(result)")
                    }
                }
            }
        }
    }

    @Test func requestLinesWithEveryPrintableOneByteChange() {
        // Through the request parser, at an offset in a longer buffer: the status is the reference's for every
        // printable byte (no SP: that would split the line differently) in every place of both versions.
        for base in [v11, v10] {
            for k in 0..<8 {
                for b in UInt8(0x21)...UInt8(0x7E) {
                    var token = base
                    token[k] = b
                    let prefix = Array("xxGET /api/tags ".utf8)
                    let raw = prefix + token + Array("\r\nHost: x\r\n\r\n".utf8)
                    var head = RequestHead()
                    let result = RequestParser().parse(raw, from: 2, to: raw.count, into: &head)
                    switch (reference(token, 0..<8), result) {
                    case (.success(let v), .complete): #expect(head.version == v)
                    case (.failure(let e), .invalid(let got)): #expect(got == e, "\(token)")
                    default: Issue.record("\(token): \(result)")
                    }
                }
            }
        }
    }
}
