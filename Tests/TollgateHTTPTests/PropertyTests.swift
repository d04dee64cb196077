import Testing
@testable import TollgateHTTP

/// A small deterministic generator (SplitMix64), so every run mutates the same way.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutates `input` by replacing, inserting or deleting a few bytes chosen from the grammar's sharp edges.
func mutate(_ input: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
    let interesting: [UInt8] = [0x0D, 0x0A, 0x20, 0x09, 0x00, 0x3A, 0x2C, 0x3B, 0x22, 0x61, 0x30, 0x46, 0x80, 0x7F]
    var out = input
    for _ in 0..<Int.random(in: 1...3, using: &rng) where !out.isEmpty {
        let at = Int.random(in: 0..<out.count, using: &rng)
        let byte = interesting.randomElement(using: &rng)!
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: out[at] = byte
        case 1: out.insert(byte, at: at)
        default: out.remove(at: at)
        }
    }
    return out
}

@Suite("Properties over mutated input")
struct PropertyTests {
    static let requestSeeds = [
        "GET /api/tags HTTP/1.1\r\nHost: localhost:11434\r\nConnection: keep-alive\r\n\r\n",
        "POST /api/chat HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
        "POST /api/blobs/sha256 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        "\r\nGET http://h/v1/models HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ]

    @Test("A prefix never gets a verdict the whole input would not; complete heads stay inside the buffer")
    func requestPrefixes() {
        var rng = SplitMix64(state: 42)
        let parser = RequestParser()
        var head = RequestHead()
        for round in 0..<3000 {
            let input = mutate(bytes(Self.requestSeeds[round % Self.requestSeeds.count]), using: &rng)
            let whole = parser.parse(input, from: 0, to: input.count, into: &head)
            if whole == .complete {
                #expect(head.headLength <= input.count)
                for field in head.headers {
                    #expect(field.name.upperBound <= head.headLength && field.value.upperBound <= head.headLength)
                }
                if head.framing == .chunked {
                    #expect(head.headers.filter { $0.kind == .contentLength }.isEmpty)
                    #expect(head.headers.filter { $0.kind == .transferEncoding }.count == 1)
                }
            }
            let cut = Int.random(in: 0...input.count, using: &rng)
            let prefix = parser.parse(input, from: 0, to: cut, into: &head)
            switch prefix {
            case .needMore: break
            case .complete, .invalid: #expect(prefix == whole, "round \(round)")
            }
        }
    }

    @Test("Chunked decoding gives the same verdict whole and byte by byte")
    func chunkedSplits() throws {
        var rng = SplitMix64(state: 7)
        let seed = bytes("4\r\nwiki\r\n5;a=\"b\"\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT")
        for _ in 0..<1500 {
            let input = mutate(seed, using: &rng)
            let whole = outcome(input, pieceSize: input.count)
            let single = outcome(input, pieceSize: 1)
            #expect(whole == single)
        }
    }

    private struct Outcome: Equatable {
        var data: [UInt8] = []
        var consumed = 0
        var done = false
        var error: HTTPParseError?
    }

    private func outcome(_ input: [UInt8], pieceSize: Int) -> Outcome {
        var decoder = ChunkedDecoder()
        var result = Outcome()
        var start = 0
        while start < input.count && !decoder.isDone {
            let end = min(input.count, start + max(pieceSize, 1))
            do {
                result.consumed += try decoder.decode(input, from: start, to: end) { result.data += input[$0] }
            } catch {
                // Bytes consumed before a refusal depend on how the input was split; only the refusal counts.
                result.error = error
                result.consumed = 0
                return result
            }
            start = end
        }
        result.done = decoder.isDone
        return result
    }
}
