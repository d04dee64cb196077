import Glibc
import TollgateIO

/// The socket calls the fake server makes, over TollgateIO's wrappers: EINTR is retried, SIGPIPE is never raised.
/// TollgateIO hands out non-blocking descriptors; the fake server's threads block, so every fd is made blocking.
enum Sock {
    /// Resolves `host`, then creates, binds and listens; returns the fd and the bound port (useful when `port` is 0).
    static func listen(host: String, port: UInt16) throws(FakeOllamaError) -> (fd: Int32, port: UInt16) {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let address: SocketAddress
        do {
            address = try SocketAddress.resolve(host: bare, port: port)
        } catch {
            throw .cannotResolve(host: host)
        }
        let fd: Int32
        do {
            fd = try Socket.listen(on: address, reusePort: false, backlog: 1024)
        } catch {
            throw .cannotListen(host: bare, port: port, reason: error.code != 0 ? errnoText(error.code) : error.description)
        }
        Syscall.setBlocking(fd)
        return (fd, Socket.localAddress(fd)?.port ?? 0)
    }

    /// Accepts one connection (blocking, TCP_NODELAY); nil when the listener was shut down or failed for good.
    static func accept(_ listener: Int32) -> Int32? {
        while true {
            switch Socket.accept(listener) {
            case .connection(let fd, _):
                Syscall.setBlocking(fd)
                return fd
            case .wouldBlock:
                continue
            case .exhausted:
                // Out of descriptors: back off briefly instead of spinning, then try again.
                usleep(10_000)
            case .failed:
                return nil  // EINVAL after shutdown(), EBADF after close()
            }
        }
    }

    /// Reads into `buffer[offset..<offset+count]`; returns bytes read, 0 on EOF, -1 on error.
    static func read(_ fd: Int32, into buffer: inout [UInt8], at offset: Int, count: Int) -> Int {
        switch Syscall.read(fd, into: &buffer, at: offset, count: count) {
        case .bytes(let n): return n
        case .eof: return 0
        case .wouldBlock, .failed: return -1
        }
    }

    /// Writes all of `bytes`; false if the peer is gone.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            guard case .bytes(let n) = Syscall.write(fd, bytes, at: sent, count: bytes.count - sent) else { return false }
            sent += n
        }
        return true
    }

    /// Shuts down both directions, which wakes any thread blocked in accept/recv/poll on `fd`.
    static func shutdownBoth(_ fd: Int32) {
        Socket.shutdownBoth(fd)
    }

    /// Closes `fd` once; EINTR is not retried (the descriptor is gone either way on Linux).
    static func close(_ fd: Int32) {
        Syscall.close(fd)
    }
}
