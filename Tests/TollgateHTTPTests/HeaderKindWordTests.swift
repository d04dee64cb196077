import Testing
@testable import TollgateHTTP

/// Header names recognised eight bytes at a time, checked against a plain reference (lowercase the bytes, look the
/// name up) on generated names: every known name in random case, one byte changed, a byte more or less, the
/// prefixes, bytes just outside the letters (`@`, `[`, `` ` ``, `{`, non-ASCII), and names at the very end of the
/// buffer (where fewer than eight bytes follow).
@Suite struct HeaderKindWordTests {
    static let known: [String: HeaderKind] = [
        "te": .te, "host": .host, "expect": .expect, "origin": .origin, "cookie": .cookie, "trailer": .trailer,
        "upgrade": .upgrade, "referer": .referer, "x-api-key": .xApiKey, "forwarded": .forwarding,
        "x-real-ip": .forwarding, "connection": .connection, "keep-alive": .keepAlive, "content-type": .contentType,
        "x-request-id": .xRequestId, "authorization": .authorization, "content-length": .contentLength,
        "x-forwarded-for": .xForwardedFor, "proxy-connection": .proxyConnection,
        "content-encoding": .contentEncoding, "transfer-encoding": .transferEncoding,
        "x-forwarded-proto": .xForwardedProto, "proxy-authorization": .proxyAuthorization,
    ]

    /// The reference: ASCII-lowercase the bytes, then the exact names, then the two prefixes.
    static func reference(_ name: [UInt8]) -> HeaderKind {
        let lower = name.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        if let text = String(validating: lower, as: UTF8.self), let kind = known[text] { return kind }
        if lower.starts(with: Array("proxy-".utf8)) { return .proxyOther }
        if lower.starts(with: Array("x-forwarded-".utf8)) { return .forwarding }
        return .other
    }

    static func randomCase(_ name: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        name.map { b in b >= 0x61 && b <= 0x7A && rng.next() % 2 == 0 ? b & ~0x20 : b }
    }

    static func variants(_ rng: inout SplitMix64) -> [[UInt8]] {
        let odd: [UInt8] = [0x40, 0x5B, 0x60, 0x7B, 0x41, 0x5A, 0x61, 0x7A, 0x2D, 0xC1, 0xE1, 0x80, 0xFF, 0x00, 0x0D]
        var out: [[UInt8]] = []
        for name in known.keys.map({ Array($0.utf8) }) + [Array("proxy-".utf8), Array("x-forwarded-".utf8)] {
            out.append(name)
            out.append(randomCase(name, &rng))
            out.append(name.map { $0 >= 0x61 && $0 <= 0x7A ? $0 & ~0x20 : $0 })
            var changed = randomCase(name, &rng)
            changed[Int(rng.next() % UInt64(changed.count))] = odd[Int(rng.next() % UInt64(odd.count))]
            out.append(changed)
            out.append(Array(randomCase(name, &rng).dropLast()))
            out.append(randomCase(name, &rng) + [odd[Int(rng.next() % UInt64(odd.count))]])
            out.append(randomCase(name, &rng) + Array("-extra-name".utf8))
        }
        for _ in 0..<2_000 {
            let count = Int(rng.next() % 30)
            out.append((0..<count).map { _ in
                rng.next() % 4 == 0 ? odd[Int(rng.next() % UInt64(odd.count))] : UInt8(0x21 + rng.next() % 0x5E)
            })
        }
        return out
    }

    @Test func recognitionMatchesTheReference() {
        var rng = SplitMix64(state: 1960)
        for name in Self.variants(&rng) {
            let expected = Self.reference(name)
            // Alone (the name ends the buffer: the loads near the end go byte by byte), and inside a field line.
            #expect(HeaderKind.recognize(name, 0..<name.count) == expected, "\(name)")
            let line = Array("GET / HTTP/1.1\r\n".utf8) + name + Array(": v\r\n\r\n".utf8)
            #expect(HeaderKind.recognize(line, 16..<(16 + name.count)) == expected, "\(name) in a line")
            let tail = Array("xy".utf8) + name
            #expect(HeaderKind.recognize(tail, 2..<tail.count) == expected, "\(name) at the end")
        }
    }

    @Test func lowercasingTouchesCapitalLettersOnly() {
        for b in 0...255 {
            let byte = UInt8(b)
            let expected: UInt8 = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            // In every position of the word, with other bytes around it.
            for position in 0..<8 {
                let word = (UInt64(0x5A41_7B40_FF80_2D61) & ~(0xFF << UInt64(position * 8)))
                    | (UInt64(byte) << UInt64(position * 8))
                let lowered = HeaderKind.lowercased(word)
                #expect(UInt8(truncatingIfNeeded: lowered >> UInt64(position * 8)) == expected, "\(b) at \(position)")
            }
        }
        #expect(HeaderKind.lowercased(0x5A41_7B40_FF80_2D61) == 0x7A61_7B40_FF80_2D61)
    }
}
