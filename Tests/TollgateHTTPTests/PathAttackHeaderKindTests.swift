import Testing
@testable import TollgateHTTP

/// Header-name recognition (eight bytes at a time, lowercased in the word) against the byte-by-byte implementation
/// it replaced, kept here verbatim as `previous`: every case mix of every known name, every byte value in every
/// position of every known name, every one-byte extension and truncation, names whose buffer goes on with the rest
/// of a longer known name (the mask past a name's end), every short name over the letters that matter, and names
/// at every distance from the buffer's end (the byte-by-byte load there).
@Suite struct PathAttackHeaderKindTests {
    /// The implementation before the word-at-a-time one.
    static func previous(_ bytes: borrowing Span<UInt8>, _ name: Range<Int>) -> HeaderKind {
        func named(_ lowercase: StaticString) -> Bool {
            HTTPBytes.matches(bytes, name, lowercase, folding: true, prefix: false)
        }
        switch name.count {
        case 2:
            if named("te") { return .te }
        case 4:
            if named("host") { return .host }
        case 6:
            if named("expect") { return .expect }
            if named("origin") { return .origin }
            if named("cookie") { return .cookie }
        case 7:
            if named("trailer") { return .trailer }
            if named("upgrade") { return .upgrade }
            if named("referer") { return .referer }
        case 9:
            if named("x-api-key") { return .xApiKey }
            if named("forwarded") { return .forwarding }
            if named("x-real-ip") { return .forwarding }
        case 10:
            if named("connection") { return .connection }
            if named("keep-alive") { return .keepAlive }
        case 12:
            if named("content-type") { return .contentType }
            if named("x-request-id") { return .xRequestId }
        case 13:
            if named("authorization") { return .authorization }
        case 14:
            if named("content-length") { return .contentLength }
        case 15:
            if named("x-forwarded-for") { return .xForwardedFor }
        case 16:
            if named("proxy-connection") { return .proxyConnection }
            if named("content-encoding") { return .contentEncoding }
        case 17:
            if named("transfer-encoding") { return .transferEncoding }
            if named("x-forwarded-proto") { return .xForwardedProto }
        case 19:
            if named("proxy-authorization") { return .proxyAuthorization }
        default:
            break
        }
        if HTTPBytes.matches(bytes, name, "proxy-", folding: true, prefix: true) { return .proxyOther }
        if HTTPBytes.matches(bytes, name, "x-forwarded-", folding: true, prefix: true) { return .forwarding }
        return .other
    }

    static let names: [String] = [
        "te", "host", "expect", "origin", "cookie", "trailer", "upgrade", "referer", "x-api-key", "forwarded",
        "x-real-ip", "connection", "keep-alive", "content-type", "x-request-id", "authorization", "content-length",
        "x-forwarded-for", "proxy-connection", "content-encoding", "transfer-encoding", "x-forwarded-proto",
        "proxy-authorization", "proxy-", "x-forwarded-", "proxy-x", "x-forwarded-host", "x-forwarded-x",
    ]

    /// Checks `name` against `previous` in four placements: alone (it ends the buffer), after a request line and
    /// before ": v", after two bytes with nothing following, and followed by `after` (bytes the mask must hide).
    static func check(_ name: [UInt8], after: [UInt8] = Array(": v\r\n\r\n".utf8),
                      sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let placements: [([UInt8], Range<Int>)] = [
            (name, 0..<name.count),
            (Array("GET / HTTP/1.1\r\n".utf8) + name + after, 16..<(16 + name.count)),
            (Array("xy".utf8) + name, 2..<(2 + name.count)),
            (name + after, 0..<name.count),
        ]
        for (buffer, range) in placements {
            let expected = previous(buffer.span, range)
            let got = HeaderKind.recognize(buffer, range)
            if got != expected {
                Issue.record("\(name) in \(buffer) at \(range): \(got), previously \(expected)",
                             sourceLocation: sourceLocation)
                return false
            }
        }
        return true
    }

    @Test func everyCaseMixOfEveryKnownName() {
        // The longest (proxy-authorization, 18 letters) has 262,144 spellings; each is checked where the name ends
        // the buffer and where eight bytes follow it.
        for name in Self.names {
            let base = Array(name.utf8)
            let letters = base.indices.filter { base[$0] >= 0x61 && base[$0] <= 0x7A }
            for mask in 0..<(1 << letters.count) {
                var spelled = base
                for (bit, at) in letters.enumerated() where mask >> bit & 1 == 1 { spelled[at] &= ~0x20 }
                let kind = HeaderKind.recognize(spelled, 0..<spelled.count)
                let inLine = spelled + Array(": value\r\n".utf8)
                let kindInLine = HeaderKind.recognize(inLine, 0..<spelled.count)
                let expected = Self.previous(spelled.span, 0..<spelled.count)
                if kind != expected || kindInLine != expected {
                    Issue.record("\(String(decoding: spelled, as: UTF8.self)): \(kind)/\(kindInLine), previously \(expected)")
                    return
                }
            }
        }
    }

    @Test func everyByteInEveryPositionOfEveryKnownName() {
        var rng = SplitMix64(state: 0x7061_7468)
        for name in Self.names {
            let base = Array(name.utf8)
            for at in base.indices {
                for value in 0...255 {
                    for spelling in 0..<2 {
                        var spelled = spelling == 0 ? base : base.map { $0 >= 0x61 && $0 <= 0x7A && rng.next() & 1 == 0 ? $0 & ~0x20 : $0 }
                        spelled[at] = UInt8(value)
                        if !Self.check(spelled) { return }
                    }
                }
            }
        }
    }

    @Test func everyExtensionAndTruncationOfEveryKnownName() {
        for name in Self.names {
            let base = Array(name.utf8)
            let upper = base.map { $0 >= 0x61 && $0 <= 0x7A ? $0 & ~0x20 : $0 }
            for spelled in [base, upper] {
                // One byte more, of every value, at the end and at the start.
                for value in 0...255 {
                    if !Self.check(spelled + [UInt8(value)]) { return }
                    if !Self.check([UInt8(value)] + spelled) { return }
                }
                // Every prefix, with the rest of the name (and of every other known name) right after it in the
                // buffer: only the mask keeps those bytes out of the word.
                for length in 0...spelled.count {
                    let prefix = Array(spelled[..<length])
                    if !Self.check(prefix, after: Array(spelled[length...]) + Array(": v\r\n".utf8)) { return }
                    for other in Self.names {
                        let rest = Array(other.utf8)
                        if rest.count > length && !Self.check(prefix, after: Array(rest[length...])) { return }
                    }
                }
            }
        }
    }

    @Test func everyShortNameOverTheLettersThatMatter() {
        // Every name of up to four bytes over the letters of "te" and "host" in both cases, the bytes beside the
        // capitals, '-', NUL and non-ASCII: 15^4 + 15^3 + ... names.
        let alphabet: [UInt8] = Array("teTEhosHOS-@[`{".utf8)
        let extra: [UInt8] = [0x00, 0x80, 0xC8, 0xD4]
        let letters = alphabet + extra
        var name: [UInt8] = []
        func walk(_ depth: Int) -> Bool {
            if !Self.check(name) { return false }
            guard depth < 4 else { return true }
            for b in letters {
                name.append(b)
                defer { name.removeLast() }
                if !walk(depth + 1) { return false }
            }
            return true
        }
        _ = walk(0)
    }

    @Test func namesAtEveryDistanceFromTheBufferEnd() {
        // A name starting at every offset 0-8 with 0-9 bytes after it, those bytes a known name's continuation or
        // a NUL run: every combination of loaded and byte-by-byte words.
        for name in Self.names {
            let base = Array(name.utf8)
            for lead in 0...8 {
                for trail in 0...9 {
                    for filler: UInt8 in [0x00, 0x61, 0x3A] {
                        let buffer = Array(repeating: UInt8(0x78), count: lead) + base
                            + Array(repeating: filler, count: trail)
                        for end in [base.count, base.count - 1] where end >= 0 {
                            let range = lead..<(lead + end)
                            let expected = Self.previous(buffer.span, range)
                            let got = HeaderKind.recognize(buffer, range)
                            #expect(got == expected, "\(name) lead \(lead) trail \(trail) \(filler) end \(end)")
                        }
                    }
                }
            }
        }
    }

    @Test func randomNamesAgreeWithThePreviousImplementation() {
        var rng = SplitMix64(state: 20_261_206)
        let letters = Array(Set(Self.names.joined().utf8)) + Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.!~".utf8)
        for _ in 0..<100_000 {
            let count = Int(rng.next() % 26)
            var name = (0..<count).map { _ in letters[Int(rng.next() % UInt64(letters.count))] }
            if rng.next() % 3 == 0, let known = Self.names.randomElement(using: &rng) {
                // A known name's start with random continuations.
                name = Array(known.utf8.prefix(Int(rng.next() % UInt64(known.utf8.count + 1)))) + name.prefix(4)
            }
            if !Self.check(name) { return }
        }
    }

    @Test func parsedHeadersCarryThePreviousKinds() throws {
        // Through the parser: the kinds on the parsed fields (what the rewriter strips and the framing uses) are
        // the previous implementation's, for every known name in random case on its own line, with the line
        // ending the buffer's eight-byte words at every offset.
        var rng = SplitMix64(state: 9)
        for name in Self.names where !name.hasSuffix("-") {
            for pad in 0..<8 {
                let spelled = String(name.map { c in rng.next() & 1 == 0 ? Character(c.uppercased()) : c })
                let target = "/" + String(repeating: "a", count: pad)
                let value = name.lowercased() == "content-length" ? "0"
                    : name.lowercased() == "transfer-encoding" ? "chunked" : name.lowercased() == "host" ? "h" : "v"
                let request = "POST \(target) HTTP/1.1\r\nHost: h\r\n\(spelled): \(value)\r\n\r\n"
                let (result, head, buffer) = parseRequest(request)
                guard result == .complete else { continue }
                for field in head.headers {
                    #expect(field.kind == Self.previous(buffer.span, field.name), "\(request)")
                }
            }
        }
    }
}
