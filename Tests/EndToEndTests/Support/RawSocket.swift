import Glibc

/// Bounds blocking reads on a test's own socket by the harness's I/O timeout (a missing answer fails the test instead
/// of hanging it) and sends each write at once (TCP_NODELAY: a paced write arrives as paced).
func setTestSocketOptions(_ fd: Int32) {
    var tv = timeval(tv_sec: ClientSocket.ioTimeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
}

/// A plain TCP connection the test shapes itself: from a chosen loopback source address, with small kernel
/// buffers, non-blocking writes, half-close. Blocking reads bounded by the harness's I/O timeout.
final class RawSocket: ByteStream {
    private(set) var fd: Int32

    /// Connects to 127.0.0.1:port from `source` (any 127.0.0.0/8 address; loopback accepts them all), with the
    /// kernel's receive and send buffers set to `buffer` bytes when given (before connecting, so the window is small
    /// from the start).
    init(port: UInt16, source: String = "127.0.0.1", buffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WireError("socket: errno \(errno)") }
        setTestSocketOptions(fd)
        var tv = timeval(tv_sec: ClientSocket.ioTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if var size = buffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &local) { l in
            l.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0 ? withUnsafePointer(to: &sin) { s in
            s.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } : -1
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            throw WireError("connect from \(source): errno \(e)")
        }
    }

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

    /// Writes what fits without blocking: the count written (0 when the send buffer is full).
    func writeWithoutBlocking(_ bytes: [UInt8], from offset: Int) throws -> Int {
        let n = bytes.withUnsafeBytes {
            send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
        if n >= 0 { return n }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return 0 }
        throw WireError("send: errno \(errno)")
    }

    /// Whether the socket becomes writable within `millis` (false: the peer is not taking what is sent).
    func waitWritable(millis: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&p, 1, millis) == 1
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

    /// Sends FIN: the client will send nothing more but still reads.
    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
