import Glibc

/// Why a client-side socket operation failed.
struct WireError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A blocking, timeout-bounded byte pipe to the proxy: plain TCP or TLS.
protocol ByteStream: AnyObject {
    /// Writes every byte or throws.
    func write(_ bytes: [UInt8]) throws
    /// Reads what is available (at most `max` bytes); `[]` means the peer closed (FIN, close_notify or reset).
    /// Throws on a timeout, so a proxy bug fails the test instead of hanging it.
    func readSome(max: Int) throws -> [UInt8]
    /// Closes the connection (idempotent).
    func close()
}

/// Socket helpers shared by the plain and TLS clients.
enum ClientSocket {
    /// Seconds any single read or write may block.
    static let ioTimeoutSeconds = 10

    /// Connects a blocking TCP socket to 127.0.0.1:port with send/receive timeouts set; throws if refused.
    static func connect(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WireError("socket: errno \(errno)") }
        var tv = timeval(tv_sec: ioTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            throw WireError(e == ECONNREFUSED ? "connection refused" : "connect: errno \(e)")
        }
        return fd
    }
}

/// A plain TCP connection (the plain and redirect listeners).
final class PlainStream: ByteStream {
    private var fd: Int32

    /// Connects to 127.0.0.1:port.
    init(port: UInt16) throws { fd = try ClientSocket.connect(port: port) }

    deinit { close() }

    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw WireError("send: errno \(errno)") }
            offset += n
        }
    }

    func readSome(max: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, max, 0) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n == 0 { return [] }
            switch errno {
            case EINTR: continue
            case ECONNRESET: return []
            case EAGAIN, EWOULDBLOCK: throw WireError("read timed out")
            default: throw WireError("recv: errno \(errno)")
            }
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
