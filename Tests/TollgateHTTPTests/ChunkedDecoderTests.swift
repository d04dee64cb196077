import Testing
@testable import TollgateHTTP

@Suite("Chunked decoder")
struct ChunkedDecoderTests {
    /// Decodes `wire` fed in the given pieces; returns the data, the bytes consumed, and whether it finished.
    private func decode(_ wire: [UInt8], splits: [Int] = [], decoder: ChunkedDecoder = ChunkedDecoder())
        throws(HTTPParseError) -> (data: [UInt8], consumed: Int, done: Bool)
    {
        var decoder = decoder
        var data: [UInt8] = []
        var consumed = 0
        var start = 0
        for end in splits + [wire.count] where end >= start {
            let n = try decoder.decode(wire, from: start, to: end) { data += wire[$0] }
            consumed += n
            if decoder.isDone { break }
            start = end
        }
        return (data, consumed, decoder.isDone)
    }

    private func refused(_ wire: String, decoder: ChunkedDecoder = ChunkedDecoder()) -> Int? {
        do {
            _ = try decode(bytes(wire), decoder: decoder)
            return nil
        } catch {
            return error.status
        }
    }

    static let body = "5\r\nhello\r\n1a;name=value;flag\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n"

    @Test("A body decodes to its data and ends exactly after the final CRLF")
    func whole() throws {
        let wire = bytes(Self.body)
        let (data, consumed, done) = try decode(wire)
        #expect(String(decoding: data, as: UTF8.self) == "helloabcdefghijklmnopqrstuvwxyz")
        #expect(consumed == wire.count)
        #expect(done)
    }

    @Test("Split at every byte offset gives the same data")
    func everySplit() throws {
        let wire = bytes(Self.body)
        for split in 0...wire.count {
            let (data, consumed, done) = try decode(wire, splits: [split])
            #expect(String(decoding: data, as: UTF8.self) == "helloabcdefghijklmnopqrstuvwxyz", "split \(split)")
            #expect(consumed == wire.count)
            #expect(done)
        }
    }

    @Test("Fed one byte at a time gives the same data")
    func byteByByte() throws {
        let wire = bytes(Self.body)
        let (data, consumed, done) = try decode(wire, splits: Array(1..<wire.count))
        #expect(String(decoding: data, as: UTF8.self) == "helloabcdefghijklmnopqrstuvwxyz")
        #expect(consumed == wire.count)
        #expect(done)
    }

    @Test("Bytes after the end of the body are left alone")
    func stopsAtEnd() throws {
        let body = bytes("3\r\nabc\r\n0\r\n\r\n")
        let wire = body + bytes("GET / HTTP/1.1\r\n")
        var decoder = ChunkedDecoder()
        var data: [UInt8] = []
        let consumed = try decoder.decode(wire, from: 0, to: wire.count) { data += wire[$0] }
        #expect(consumed == body.count)
        #expect(decoder.isDone)
        #expect(data == bytes("abc"))
        // Once done, it consumes nothing more.
        #expect(try decoder.decode(wire, from: consumed, to: wire.count) { _ in Issue.record("no data") } == 0)
    }

    @Test("Decoding at a non-zero start reports ranges in the whole buffer")
    func nonZeroStart() throws {
        let wire = bytes("xxxx2\r\nok\r\n0\r\n\r\n")
        var decoder = ChunkedDecoder()
        var ranges: [Range<Int>] = []
        let consumed = try decoder.decode(wire, from: 4, to: wire.count) { ranges.append($0) }
        #expect(ranges == [7..<9])
        #expect(consumed == wire.count - 4)
    }

    @Test("Valid chunk lines", arguments: [
        "A\r\n0123456789\r\n0\r\n\r\n", "a\r\n0123456789\r\n0\r\n\r\n", "00a\r\n0123456789\r\n0\r\n\r\n",
        "000000000000000\r\n\r\n", "1;a\r\nx\r\n0\r\n\r\n", "1;a=b;c=\"q \\\" d\"\r\nx\r\n0;last\r\n\r\n",
        "0\r\nA: 1\r\nB:\r\nC:  spaced \t\r\n\r\n",
    ])
    func valid(wire: String) {
        #expect(refused(wire) == nil, "\(wire)")
    }

    @Test("Bad chunk sizes are 400", arguments: [
        "-0x0\r\n\r\n", " 5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "5 \r\nhello\r\n0\r\n\r\n",
        "+5\r\nhello\r\n0\r\n\r\n", "\r\n", "g\r\n", "1000000000000000\r\n", "ffffffffffffffffff\r\n",
        "5 ;a\r\nhello\r\n0\r\n\r\n",
    ])
    func badSizes(wire: String) {
        #expect(refused(wire) == 400, "\(wire)")
    }

    @Test("Bad chunk extensions are 400", arguments: [
        "1;\r\nx\r\n", "1; a\r\nx\r\n", "1;a =b\r\nx\r\n", "1;a=\r\nx\r\n", "1;a=\"x\r\nx\r\n", "1;a=\"x\"y\r\nx\r\n",
        "1;a=b c\r\nx\r\n", "1;(\r\nx\r\n",
    ])
    func badExtensions(wire: String) {
        #expect(refused(wire) == 400, "\(wire)")
    }

    @Test("Line endings and data delimiters are strict", arguments: [
        "5\nhello\r\n0\r\n\r\n", "5\rhello\r\n0\r\n\r\n", "5\r\nhelloX\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello\r\r\n0\r\n\r\n", "0\r\n\n", "0\r\n\rx",
    ])
    func badDelimiters(wire: String) {
        #expect(refused(wire) == 400, "\(wire)")
    }

    @Test("Bad trailers are 400", arguments: [
        "0\r\nA : 1\r\n\r\n", "0\r\n folded\r\n\r\n", "0\r\n: v\r\n\r\n", "0\r\nA: a\u{1}b\r\n\r\n",
        "0\r\nA: a\u{0}b\r\n\r\n", "0\r\nA: 1\nB: 2\r\n\r\n", "0\r\nNoColon\r\n\r\n",
    ])
    func badTrailers(wire: String) {
        #expect(refused(wire) == 400, "\(wire)")
    }

    @Test("A chunk line over maxChunkLineBytes is refused before its CRLF arrives")
    func longExtensionLine() {
        let decoder = ChunkedDecoder(maxChunkLineBytes: 32)
        #expect(refused("1;" + String(repeating: "a", count: 31), decoder: decoder) == 400)
        #expect(refused("1;" + String(repeating: "a", count: 30) + "\r\nx\r\n0\r\n\r\n", decoder: decoder) == nil)
    }

    @Test("A trailer section over maxTrailerBytes is 400")
    func longTrailers() {
        let decoder = ChunkedDecoder(maxTrailerBytes: 20)
        #expect(refused("0\r\nX: " + String(repeating: "a", count: 30), decoder: decoder) == 400)
        #expect(refused("0\r\nX: 1234567890123\r\n\r\n", decoder: decoder) == nil)  // exactly 20 bytes
    }

    @Test("After a refusal the decoder keeps refusing; reset makes it usable again")
    func failedStaysFailed() throws {
        var decoder = ChunkedDecoder()
        let bad = bytes("z\r\n")
        #expect(throws: HTTPParseError.self) { try decoder.decode(bad, from: 0, to: bad.count) { _ in } }
        let good = bytes("0\r\n\r\n")
        #expect(throws: HTTPParseError.self) { try decoder.decode(good, from: 0, to: good.count) { _ in } }
        decoder.reset()
        #expect(try decoder.decode(good, from: 0, to: good.count) { _ in } == good.count)
        #expect(decoder.isDone)
    }

    @Test("Large chunk sizes pass data through in runs")
    func largeChunk() throws {
        let payload = [UInt8](repeating: 0x61, count: 70_000)
        let wire = bytes("11170\r\n") + payload + bytes("\r\n0\r\n\r\n")
        let (data, consumed, done) = try decode(wire, splits: [100, 40_000])
        #expect(data == payload)
        #expect(consumed == wire.count)
        #expect(done)
    }
}
