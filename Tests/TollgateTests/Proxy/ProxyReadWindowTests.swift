import Testing
import TollgateIO
@testable import Tollgate

/// The read window both sides of an exchange read into, without sockets: a scripted reader stands in for the
/// socket and hands out its bytes in the sizes asked for.
@Suite struct ProxyReadWindowTests {
    /// A socket stand-in: returns up to `count` of its remaining bytes, then `.wouldBlock` (or `.eof` at the end).
    final class ScriptedReader {
        var pending: [UInt8]
        var eofAtEnd: Bool
        var asked: [Int] = []
        init(_ bytes: String, eofAtEnd: Bool = false) {
            pending = Array(bytes.utf8)
            self.eofAtEnd = eofAtEnd
        }

        func read(_ buffer: inout [UInt8], _ offset: Int, _ count: Int) -> IOResult {
            asked.append(count)
            guard !pending.isEmpty else { return eofAtEnd ? .eof : .wouldBlock(wantsWrite: false) }
            let n = min(count, pending.count)
            buffer.replaceSubrange(offset..<offset + n, with: pending.prefix(n))
            pending.removeFirst(n)
            return .bytes(n)
        }
    }

    private func text(_ w: ReadWindow) -> String { String(decoding: w.bytes[w.unread], as: UTF8.self) }

    @Test func readsAppendAfterTheUnreadBytesAndConsumeTakesFromTheFront() {
        var w = ReadWindow()
        #expect(!w.hasBuffer && !w.hasUnread && w.room == 0)
        w.adopt([UInt8](repeating: 0, count: 8))
        let reader = ScriptedReader("GET / HTTP/1.1")
        let r1 = w.read(reader.read)
        #expect(r1 == .bytes(8))
        #expect(text(w) == "GET / HT" && w.room == 0)
        w.consume(4)
        #expect(text(w) == "/ HT" && w.count == 4)
        let r2 = w.compact()
        #expect(r2 == 4)
        #expect(w.start == 0 && text(w) == "/ HT" && w.room == 4)
        let r3 = w.read(reader.read)
        #expect(r3 == .bytes(4))
        #expect(text(w) == "/ HTTP/1")
        let r4 = w.compact()
        #expect(r4 == 0, "already at the front: nothing moves")
    }

    @Test func growKeepsTheUnreadBytesInPlaceAndDoublesTheRoom() {
        var w = ReadWindow()
        w.adopt([UInt8](repeating: 0, count: 4096))
        let reader = ScriptedReader(String(repeating: "a", count: 5000))
        let r5 = w.read(reader.read)
        #expect(r5 == .bytes(4096))
        w.consume(10)
        w.grow()
        #expect(w.bytes.count == 8192 && w.start == 10 && w.end == 4096 && w.room == 4096)
        let r6 = w.read(reader.read)
        #expect(r6 == .bytes(904))
        #expect(w.count == 4990 && w.bytes[w.unread].allSatisfy { $0 == UInt8(ascii: "a") })
    }

    @Test func rewindOnlyWhenEverythingWasConsumed() {
        var w = ReadWindow()
        w.adopt([UInt8](repeating: 0, count: 16))
        _ = w.read(ScriptedReader("abcdef").read)
        w.consume(3)
        let r7 = w.rewindIfDrained()
        #expect(!r7)
        #expect(text(w) == "def")
        w.consumeAll()
        let r8 = w.rewindIfDrained()
        #expect(r8)
        #expect(w.start == 0 && w.end == 0 && w.room == 16)
    }

    @Test func aReadThatMovesNothingLeavesTheWindowAsItWas() {
        var w = ReadWindow()
        w.adopt([UInt8](repeating: 0, count: 16))
        _ = w.read(ScriptedReader("abc").read)
        let reader = ScriptedReader("", eofAtEnd: true)
        let r9 = w.read(reader.read)
        #expect(r9 == .eof)
        #expect(text(w) == "abc")
        #expect(reader.asked == [13], "asked for exactly the room after the unread bytes")
        let r10 = w.read(ScriptedReader("").read)
        #expect(r10 == .wouldBlock(wantsWrite: false))
        #expect(text(w) == "abc")
    }

    @Test func discardReadsOverTheWholeBufferAndKeepsNothing() {
        var w = ReadWindow()
        w.adopt([UInt8](repeating: 0, count: 8))
        _ = w.read(ScriptedReader("abc").read)
        let reader = ScriptedReader("0123456789")
        let r11 = w.discard(reader.read)
        #expect(r11 == .bytes(8))
        #expect(!w.hasUnread && reader.asked == [8])
    }

    @Test func releaseHandsTheBufferBackAndEmptiesTheWindow() {
        var w = ReadWindow()
        w.adopt([UInt8](repeating: 7, count: 32))
        _ = w.read(ScriptedReader("abc").read)
        let buffer = w.release()
        #expect(buffer.count == 32)
        #expect(!w.hasBuffer && !w.hasUnread && w.start == 0)
        w.adopt(buffer)
        #expect(w.room == 32)
    }
}
