/// Helpers shared by the fuzz targets: failing loudly, deriving split points from the input, comparing heads.
///
/// Compiled into every target together with `Sources/TollgateHTTP/*.swift` (one module, see `fuzz/run`).
enum Fuzz {
    #if FUZZ_STRICT
    /// Built with `FUZZ_STRICT=1 fuzz/run`: also check the invariants of known, reported findings.
    static let strict = true
    #else
    /// False: invariants of known, reported findings (fuzz/crashes/README.md) are not checked.
    static let strict = false
    #endif

    /// Traps with `message` when `condition` is false. `fatalError` is kept in -O builds, unlike `assert`, and
    /// its SIGILL is what libFuzzer reports as a crash and saves as `crash-<sha1>`.
    @inline(__always)
    static func check(_ condition: Bool, _ message: @autoclosure () -> String,
                      file: StaticString = #file, line: UInt = #line) {
        if !condition { fatalError("fuzz invariant broken: " + message(), file: file, line: line) }
    }

    /// True when `inner` lies within `outer` (an empty range must still sit inside it).
    static func contains(_ outer: Range<Int>, _ inner: Range<Int>) -> Bool {
        inner.lowerBound >= outer.lowerBound && inner.upperBound <= outer.upperBound
    }

    /// FNV-1a of the input: a deterministic seed, so a saved crash input replays the same splits.
    static func seed(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// Piece lengths (each ≥ 1) adding up to `count`, drawn from a xorshift generator seeded with `seed`.
    /// Small pieces dominate so that every grammar state gets cut somewhere.
    static func pieces(count: Int, seed: UInt64) -> [Int] {
        var state = seed | 1
        var result: [Int] = []
        var left = count
        while left > 0 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            let cap = state & 3 == 0 ? 64 : 7
            let n = min(left, Int(truncatingIfNeeded: (state >> 8) % UInt64(cap)) &+ 1)
            result.append(n)
            left -= n
        }
        return result
    }

    /// A split point in 0...count derived from one byte: 0 maps to 0 and 255 to `count`.
    static func splitPoint(count: Int, byte: UInt8) -> Int {
        count * Int(byte) / 255
    }

    /// buffer[range] as readable text with CR, LF and other controls escaped, for failure messages.
    static func show(_ buffer: [UInt8], _ range: Range<Int>) -> String {
        var s = ""
        for i in range {
            let b = buffer[i]
            switch b {
            case 0x0D: s += "\\r"
            case 0x0A: s += "\\n"
            case 0x20...0x7E where b != 0x5C: s += String(UnicodeScalar(b))
            default:
                let hex = String(b, radix: 16)
                s += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return s
    }

    /// The input as bytes; libFuzzer may pass a null pointer with size 0.
    static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        guard let data, size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// ASCII-lowercased copy of buffer[range], to cross-check header recognition independently of the parser.
    static func lowercased(_ buffer: [UInt8], _ range: Range<Int>) -> [UInt8] {
        range.map { buffer[$0] >= 0x41 && buffer[$0] <= 0x5A ? buffer[$0] | 0x20 : buffer[$0] }
    }
}
