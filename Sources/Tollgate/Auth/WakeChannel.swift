import Glibc
import Synchronization
import TollgateIO

/// A counting wake-up channel over a Unix socket pair: `post` adds tokens and never blocks (the caller may be an
/// event loop), `wait` blocks a worker thread until it takes one token.
///
/// Each token is one byte in the socket buffer (hundreds of kilobytes), far more than the bounded queue it counts
/// for. Owns both descriptors; `close` them once, after every waiter has left.
final class WakeChannel: Sendable {
    /// The end threads block on (blocking mode); usable with `poll`.
    let readFD: Int32
    private let writeFD: Int32
    private let closed = Atomic<Bool>(false)

    /// Creates the socket pair, or nil when the process is out of descriptors.
    init?() {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            return nil
        }
        readFD = fds[0]
        writeFD = fds[1]
        Syscall.setNonBlocking(writeFD)
    }

    deinit {
        assert(closed.load(ordering: .relaxed), "WakeChannel deinitialised without close()")
    }

    /// Adds `count` tokens, waking that many waiters. Never blocks.
    func post(_ count: Int = 1) {
        guard count > 0, !closed.load(ordering: .relaxed) else { return }
        let bytes = [UInt8](repeating: 1, count: count)
        var offset = 0
        while offset < count {
            guard case .bytes(let n) = Syscall.write(writeFD, bytes, at: offset, count: count - offset) else { return }
            offset += n
        }
    }

    /// Blocks until a token arrives and takes it; false once the channel is broken (never in normal operation).
    func wait() -> Bool {
        var byte: [UInt8] = [0]
        if case .bytes = Syscall.read(readFD, into: &byte, at: 0, count: 1) { return true }
        return false
    }

    /// Takes every token available without blocking (call after `poll` reported `readFD` readable).
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 256)
        _ = Syscall.read(readFD, into: &buffer, at: 0, count: buffer.count)
    }

    /// Closes both descriptors; every thread that waits on them must have stopped.
    func close() {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        Syscall.close(readFD)
        Syscall.close(writeFD)
    }
}
