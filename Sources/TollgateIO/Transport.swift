/// A connected socket, plain or TLS: the one read/write surface the connection logic uses.
public enum Transport {
    case plain(Int32)
    case tls(Int32, TLSSession)

    /// The socket descriptor.
    public var fd: Int32 {
        switch self {
        case .plain(let fd), .tls(let fd, _): return fd
        }
    }

    @inline(__always)
    public func read(into buffer: inout [UInt8], at offset: Int, count: Int) -> IOResult {
        switch self {
        case .plain(let fd): return Syscall.read(fd, into: &buffer, at: offset, count: count)
        case .tls(_, let session): return session.read(into: &buffer, at: offset, count: count)
        }
    }

    @inline(__always)
    public func write(_ buffer: [UInt8], at offset: Int, count: Int) -> IOResult {
        switch self {
        case .plain(let fd): return Syscall.write(fd, buffer, at: offset, count: count)
        case .tls(_, let session): return session.write(buffer, at: offset, count: count)
        }
    }

    /// Decrypted bytes waiting in the TLS layer that epoll cannot signal.
    public var bufferedPlaintext: Int {
        switch self {
        case .plain: return 0
        case .tls(_, let session): return session.pending
        }
    }

    /// Sends close_notify (TLS) and half-closes the socket's write side.
    public func shutdownWrite() {
        if case .tls(_, let session) = self { session.shutdown() }
        Socket.shutdownWrite(fd)
    }

    /// Sends close_notify (TLS) and nothing else: for a connection about to be closed, whose close(2) sends the FIN
    /// a half-close would.
    public func sendCloseNotify() {
        if case .tls(_, let session) = self { session.shutdown() }
    }

    /// Releases the TLS session and closes the descriptor. Call exactly once, after deregistering.
    public func close() {
        switch self {
        case .plain(let fd):
            Syscall.close(fd)
        case .tls(let fd, let session):
            session.free()
            Syscall.close(fd)
        }
    }
}
