import TollgateIO

/// Bytes read from a socket and not yet consumed, `bytes[unread]`, in a buffer the worker lends: the one read
/// buffer type of both sides of an exchange (the client's requests, the upstream's responses). Reads append after
/// `end`; parsing and relaying consume from `start`; `compact` and `grow` make room. No I/O of its own: `read`
/// takes the function that reads, so the window is tested without sockets.
struct ReadWindow {
    /// The buffer (empty until a read needs one). Only `bytes[unread]` is meaningful.
    private(set) var bytes: [UInt8] = []
    private(set) var start = 0
    private(set) var end = 0

    var unread: Range<Int> { start..<end }
    /// Bytes read and not yet consumed.
    var count: Int { end - start }
    var hasUnread: Bool { start < end }
    /// Free bytes after `end`.
    var room: Int { bytes.count - end }
    var hasBuffer: Bool { !bytes.isEmpty }

    /// Gives up the first `n` unread bytes (parsed, relayed or discarded).
    mutating func consume(_ n: Int) {
        precondition(n >= 0 && n <= count)
        start += n
    }

    /// Gives up everything unread.
    mutating func consumeAll() {
        start = end
    }

    /// With nothing unread, starts again at the front of the buffer. True when it did.
    @discardableResult
    mutating func rewindIfDrained() -> Bool {
        guard start == end else { return false }
        start = 0
        end = 0
        return true
    }

    /// Moves the unread bytes to the front of the buffer; returns how far they moved (0 when already there).
    @discardableResult
    mutating func compact() -> Int {
        let moved = start
        guard moved > 0 else { return 0 }
        let n = end - start
        Syscall.moveDown(&bytes, from: start, count: n)
        start = 0
        end = n
        return moved
    }

    /// Doubles the buffer (the unread bytes stay where they are).
    mutating func grow() {
        bytes.append(contentsOf: repeatElement(0, count: Swift.max(bytes.count, 4096)))
    }

    /// Takes `buffer` (from the worker's pool) as the buffer, when there is none yet.
    mutating func adopt(_ buffer: [UInt8]) {
        precondition(bytes.isEmpty && start == 0 && end == 0)
        bytes = buffer
    }

    /// Reads once into the room after `end` through `read(buffer, offset, count)`, and counts what came.
    mutating func read(_ read: (inout [UInt8], Int, Int) -> IOResult) -> IOResult {
        let result = read(&bytes, end, bytes.count - end)
        if case .bytes(let n) = result { end += n }
        return result
    }

    /// Reads once over the whole buffer, keeping nothing (a lingering close discards what the client still sends).
    mutating func discard(_ read: (inout [UInt8], Int, Int) -> IOResult) -> IOResult {
        start = 0
        end = 0
        return read(&bytes, 0, bytes.count)
    }

    /// Hands the buffer back (for the worker's pool) and leaves the window empty.
    mutating func release() -> [UInt8] {
        start = 0
        end = 0
        defer { bytes = [] }
        return bytes
    }
}
