import Testing
@testable import TollgateHTTP

/// The eight-bytes-at-a-time skip over a header value's plain bytes: it stops exactly at the first byte that is
/// not SP, VCHAR or obs-text, or among the last seven before the end; it never skips a byte the byte loop after it
/// must see.
@Suite struct ValueSkipTests {
    static func plain(_ b: UInt8) -> Bool { b >= 0x20 && b != 0x7F }

    /// The byte a generated value holds at one position: mostly plain, sometimes one of the bytes the skip must stop
    /// at (controls, CR, LF, HTAB, DEL) or a neighbour of a boundary (0x1F, 0x20, 0x7E, 0x80, 0xFF).
    static func byte(_ rng: inout SplitMix64) -> UInt8 {
        let edge: [UInt8] = [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x7E, 0x7F, 0x80, 0xFF, 0x21, 0x01]
        return rng.next() % 5 == 0 ? edge[Int(rng.next() % UInt64(edge.count))] : UInt8(0x20 + rng.next() % 0x5F)
    }

    @Test func stopsAtTheFirstByteThatIsNotPlain() {
        var rng = SplitMix64(state: 2026)
        for _ in 0..<20_000 {
            let count = Int(rng.next() % 48)
            let buffer = (0..<count).map { _ in Self.byte(&rng) }
            let from = count == 0 ? 0 : Int(rng.next() % UInt64(count + 1))
            let stop = from + Int(rng.next() % UInt64(count - from + 1))
            let at = HeadScanner.skipPlainValueBytes(buffer.span, from: from, stop: stop)
            #expect(at >= from && at <= stop)
            #expect(buffer[from..<at].allSatisfy(Self.plain), "skipped a byte that is not plain: \(buffer) \(from) \(stop)")
            // Stopped early only at a byte that is not plain, or with fewer than eight bytes left.
            if at < stop && Self.plain(buffer[at]) { #expect(stop - at < 8, "\(buffer) \(from) \(stop) \(at)") }
            // And never later than the first byte that is not plain.
            if let first = buffer[from..<stop].firstIndex(where: { !Self.plain($0) }) { #expect(at <= first) }
        }
    }
}
