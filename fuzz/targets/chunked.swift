/// libFuzzer target: ChunkedDecoder over arbitrary bytes.
///
/// The input is decoded whole, byte by byte (same buffer, ranges of one byte), and in pieces of data-derived
/// lengths each copied into a fresh array (as a socket delivers them), by a default and a tightly limited
/// decoder. The three runs must emit the same data bytes, consume the same count and end the same way: done,
/// refused with the same error (thrown while reading the same byte), or still waiting. Also checked: every data
/// range lies within the bytes the call consumed; a call returns less than it was given only once done; after
/// done a call consumes nothing; after a refusal every call throws; decoded ≤ consumed ≤ input count; and a
/// finished body decodes to exactly what a plain reference decoder (below) reads from it.
///
/// `relay` over the same pieces: every call appends a prefix of the bytes it consumed (then a bare CRLF in the
/// call that ends the body) and nothing when it refuses; it consumes and ends as `decode` does; its output does
/// not depend on the split except through where a refusal came; a finished body relays as everything up to the
/// reference decoder's end of the last-chunk line, then CRLF.

/// How a run over the input ended.
enum ChunkedEnd: Equatable {
    /// The last chunk and the trailer section were consumed.
    case done
    /// The decoder threw this error.
    case refused(HTTPParseError)
    /// The input ran out first.
    case waiting
}

/// What a run produced.
struct ChunkedRun {
    /// The decoded data (`decode`), or the bytes relayed (`relay`).
    var data: [UInt8] = []
    var consumed = 0
    var end = ChunkedEnd.waiting
    /// The input range of the piece whose call threw.
    var refusedIn: Range<Int>?
}

/// Feeds `input` to a fresh copy of `decoder` in pieces of the given lengths.
func runChunked(_ decoder: ChunkedDecoder, _ input: [UInt8], pieces: [Int], freshArrays: Bool) -> ChunkedRun {
    var decoder = decoder
    var run = ChunkedRun()
    var position = 0
    var ranges: [Range<Int>] = []
    ranges.reserveCapacity(4)
    run.data.reserveCapacity(input.count)
    for length in pieces {
        let buffer = freshArrays ? Array(input[position..<(position + length)]) : input
        let from = freshArrays ? 0 : position
        let to = from + length
        let wasDone = decoder.isDone
        // Data ranges of this call, checked and copied once the call returns (reused: no allocation per call).
        ranges.removeAll(keepingCapacity: true)
        do {
            let count = try decoder.decode(buffer, from: from, to: to) { ranges.append($0) }
            Fuzz.check(count >= 0 && count <= length, "consumed \(count) of \(length)")
            Fuzz.check(count == length || decoder.isDone, "stopped at \(count) of \(length) without being done")
            Fuzz.check(!wasDone || count == 0, "consumed \(count) after done")
            var last = from
            for r in ranges {
                Fuzz.check(r.lowerBound >= last && r.upperBound <= from + count, "data \(r) outside \(last)..<\(from + count)")
                last = r.upperBound
                run.data.append(contentsOf: buffer[r])
            }
            if run.end == .waiting { run.consumed += count }
            if decoder.isDone { run.end = .done }
        } catch {
            Fuzz.check(error.status == 400, "chunked refusal with status \(error.status)")
            Fuzz.check(!wasDone, "threw after done")
            for r in ranges {
                Fuzz.check(r.lowerBound >= from && r.upperBound <= to, "data \(r) outside \(from)..<\(to)")
                run.data += buffer[r]
            }
            run.end = .refused(error)
            run.refusedIn = position..<(position + length)
            // A refused decoder stays refused.
            var after = decoder
            do {
                _ = try after.decode([0x30, 13, 10], from: 0, to: 3) { _ in }
                Fuzz.check(false, "decoder accepted bytes after refusing")
            } catch {
                Fuzz.check(error.status == 400, "second refusal with status \(error.status)")
            }
            return run
        }
        position += length
    }
    if run.end == .done {
        var after = decoder
        let extra = (try? after.decode([0x30, 13, 10], from: 0, to: 3) { _ in Fuzz.check(false, "data after done") })
        Fuzz.check(extra == 0, "decoder consumed \(String(describing: extra)) bytes after done")
    }
    return run
}

/// Relays `input` through a fresh copy of `decoder` in pieces of the given lengths, checking each call's output.
func runRelay(_ decoder: ChunkedDecoder, _ input: [UInt8], pieces: [Int], freshArrays: Bool) -> ChunkedRun {
    var decoder = decoder
    var run = ChunkedRun()
    var position = 0
    run.data.reserveCapacity(input.count + 2)
    for length in pieces {
        let buffer = freshArrays ? Array(input[position..<(position + length)]) : input
        let from = freshArrays ? 0 : position
        let before = run.data.count
        let wasDone = decoder.isDone
        do {
            let count = try decoder.relay(buffer, from: from, to: from + length, into: &run.data) { _ in }
            // A prefix of what this call consumed, then the CRLF of an empty trailer section if it ended the body.
            let closing = decoder.isDone && !wasDone ? 2 : 0
            let added = run.data.count - before - closing
            Fuzz.check(added >= 0 && added <= count, "relay added \(added) of \(count) consumed")
            Fuzz.check(run.data[before..<(before + added)].elementsEqual(buffer[from..<(from + added)]),
                       "relay added bytes that are not the input's")
            if closing > 0 {
                Fuzz.check(run.data.suffix(2).elementsEqual([13, 10]), "relay did not end with an empty trailer section")
            }
            Fuzz.check(!wasDone || (count == 0 && run.data.count == before), "relay went on after done")
            if run.end == .waiting { run.consumed += count }
            if decoder.isDone { run.end = .done }
        } catch {
            Fuzz.check(run.data.count == before, "a refusing relay call appended \(run.data.count - before) bytes")
            run.end = .refused(error)
            run.refusedIn = position..<(position + length)
            return run
        }
        position += length
    }
    return run
}

/// Relay's checks for one decoder configuration, against `decode`'s runs over the same pieces.
func fuzzRelay(_ input: [UInt8], _ decoder: ChunkedDecoder, whole: ChunkedRun, pieces: [Int]) {
    let n = input.count
    let relayWhole = runRelay(decoder, input, pieces: n == 0 ? [] : [n], freshArrays: false)
    let bytewise = runRelay(decoder, input, pieces: Array(repeating: 1, count: n), freshArrays: false)
    let split = runRelay(decoder, input, pieces: pieces, freshArrays: true)
    for (name, run) in [("whole", relayWhole), ("byte-by-byte", bytewise), ("split", split)] {
        Fuzz.check(run.end == whole.end, "relay \(name) ends \(run.end), decode ends \(whole.end)")
        if whole.end != .done { continue }
        Fuzz.check(run.consumed == whole.consumed, "relay \(name) consumed \(run.consumed), decode \(whole.consumed)")
        Fuzz.check(run.data == relayWhole.data, "relay \(name) output differs from the whole input's")
    }
    if whole.end == .waiting {
        Fuzz.check(bytewise.data == relayWhole.data && split.data == relayWhole.data, "a waiting relay depends on the split")
    }
    // A refusal: byte by byte has relayed all it could before the bad byte; a split, what precedes its piece.
    if let piece = split.refusedIn {
        Fuzz.check(split.data.elementsEqual(bytewise.data.prefix(piece.lowerBound)),
                   "split relay refused in \(piece) after \(split.data.count) bytes, byte-by-byte \(bytewise.data.count)")
    }
    if whole.end == .done, let reference = referenceChunked(input) {
        Fuzz.check(relayWhole.data.elementsEqual(input[0..<reference.lastChunkEnd] + [13, 10]),
                   "relay of a finished body is not its bytes up to the last-chunk line and CRLF")
    }
}

/// A lenient chunked decoder written independently of ChunkedDecoder: hex size, anything up to CRLF, data, CRLF;
/// after the zero chunk, lines up to an empty one. Returns the data, the bytes used and where the last-chunk line
/// ends, or nil if it never ends.
func referenceChunked(_ b: [UInt8]) -> (data: [UInt8], consumed: Int, lastChunkEnd: Int)? {
    let n = b.count
    var i = 0
    var data: [UInt8] = []
    /// Index just past the next CRLF at or after `from`, or nil.
    func afterCRLF(_ from: Int) -> Int? {
        var j = from
        while j + 1 < n {
            if b[j] == 13 && b[j + 1] == 10 { return j + 2 }
            j += 1
        }
        return nil
    }
    /// The value of a hex digit, or nil.
    func hex(_ c: UInt8) -> Int? {
        switch c {
        case 0x30...0x39: return Int(c) - 0x30
        case 0x41...0x46: return Int(c) - 0x41 + 10
        case 0x61...0x66: return Int(c) - 0x61 + 10
        default: return nil
        }
    }
    while true {
        var size = 0
        var digits = 0
        while i < n, digits < 16, let v = hex(b[i]) {
            size = size << 4 | v
            digits += 1
            i += 1
        }
        guard digits > 0, digits <= 15, let next = afterCRLF(i) else { return nil }
        i = next
        if size == 0 { break }
        guard size <= n - i - 2 else { return nil }
        data += b[i..<(i + size)]
        i += size
        guard b[i] == 13, b[i + 1] == 10 else { return nil }
        i += 2
    }
    let lastChunkEnd = i
    while true {
        guard let next = afterCRLF(i) else { return nil }
        if next == i + 2 { return (data, next, lastChunkEnd) }
        i = next
    }
}

/// Runs every check for one decoder configuration.
func fuzzChunked(_ input: [UInt8], _ decoder: ChunkedDecoder) {
    let n = input.count
    let whole = runChunked(decoder, input, pieces: n == 0 ? [] : [n], freshArrays: false)
    let bytewise = runChunked(decoder, input, pieces: Array(repeating: 1, count: n), freshArrays: false)
    let pieces = Fuzz.pieces(count: n, seed: Fuzz.seed(input))
    let split = runChunked(decoder, input, pieces: pieces, freshArrays: true)
    fuzzRelay(input, decoder, whole: whole, pieces: pieces)

    for (name, run) in [("byte-by-byte", bytewise), ("split", split)] {
        Fuzz.check(run.end == whole.end, "\(name) ends \(run.end), whole ends \(whole.end)")
        Fuzz.check(run.data == whole.data, "\(name) decoded \(run.data.count) bytes, whole \(whole.data.count)")
        if whole.end != .done || run.end != .done { continue }
        Fuzz.check(run.consumed == whole.consumed, "\(name) consumed \(run.consumed), whole \(whole.consumed)")
    }
    // Byte by byte pins the failing byte; any other split must fail in the piece holding it.
    if let byte = bytewise.refusedIn, let piece = split.refusedIn {
        Fuzz.check(piece.contains(byte.lowerBound), "split refused in \(piece), byte-by-byte at \(byte.lowerBound)")
    }
    Fuzz.check(whole.data.count <= n && whole.consumed <= n, "decoded or consumed more than the input")
    if case .refused = whole.end {} else {
        Fuzz.check(whole.data.count <= whole.consumed, "decoded \(whole.data.count) > consumed \(whole.consumed)")
    }

    let reference = referenceChunked(input)
    if whole.end == .done {
        Fuzz.check(reference != nil, "decoder done, reference decoder not: \(Fuzz.show(input, 0..<whole.consumed))")
        Fuzz.check(reference?.consumed == whole.consumed, "reference consumed \(reference?.consumed ?? -1), decoder \(whole.consumed)")
        Fuzz.check(reference?.data == whole.data, "reference decoded different bytes")
        // Done depends only on the bytes it consumed.
        let exact = runChunked(decoder, Array(input[0..<whole.consumed]), pieces: [whole.consumed], freshArrays: true)
        Fuzz.check(exact.end == .done && exact.consumed == whole.consumed, "body alone does not end the same")
    }
}

/// libFuzzer's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func chunkedFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    fuzzChunked(input, ChunkedDecoder())
    fuzzChunked(input, ChunkedDecoder(maxChunkLineBytes: 12, maxTrailerBytes: 24))
    return 0
}
