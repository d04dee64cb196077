import CTollgate
import Glibc

/// A failure to set up a socket, with the address and the system's reason.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The errno behind the failure, 0 when there is none (a name that does not resolve).
    public var code: Int32
    public init(_ description: String, code: Int32 = 0) {
        self.description = description
        self.code = code
    }
}

/// Socket creation helpers. Every fd returned is non-blocking and close-on-exec; the caller owns it.
public enum Socket {
    /// Binds and listens. `reusePort` lets one listener per event loop share the port.
    public static func listen(on address: SocketAddress, reusePort: Bool, backlog: Int32 = 4096) throws(SocketError) -> Int32 {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            let e = errno
            throw SocketError("socket(): \(Syscall.describe(e))", code: e)
        }
        Syscall.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if reusePort { Syscall.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
        if address.family == AF_INET6 { Syscall.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
        let rc = address.withSockAddr { bind(fd, $0, $1) }
        guard rc == 0 else {
            let e = errno
            Syscall.close(fd)
            throw SocketError("cannot listen on \(address): \(Syscall.describe(e))", code: e)
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            Syscall.close(fd)
            throw SocketError("cannot listen on \(address): \(Syscall.describe(e))", code: e)
        }
        return fd
    }

    /// The address a socket is bound to (reads back the port chosen for port 0).
    public static func localAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return rc == 0 ? SocketAddress(storage: &storage) : nil
    }

    /// The outcome of accept.
    public enum Accepted {
        case connection(Int32, SocketAddress)
        case wouldBlock
        /// Out of descriptors or memory: back off and retry later.
        case exhausted(Int32)
        case failed(Int32)
    }

    /// Accepts one connection, non-blocking, with TCP_NODELAY set.
    public static func accept(_ listenFD: Int32) -> Accepted {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    tg_accept4(listenFD, $0, &len, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if fd >= 0 {
                Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
                let peer = SocketAddress(storage: &storage) ?? SocketAddress(host: .v4(0), port: 0)
                return .connection(fd, peer)
            }
            let e = errno
            switch e {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .exhausted(e)
            default: return .failed(e)
            }
        }
    }

    /// The outcome of starting a connect.
    public enum Connecting {
        case connected(Int32)
        case inProgress(Int32)
        case failed(Int32)
    }

    /// Starts a non-blocking TCP connect with TCP_NODELAY.
    public static func connect(to address: SocketAddress) -> Connecting {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed(errno) }
        Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        while true {
            let rc = address.withSockAddr { Glibc.connect(fd, $0, $1) }
            if rc == 0 { return .connected(fd) }
            let e = errno
            if e == EINTR { continue }
            if e == EINPROGRESS { return .inProgress(fd) }
            Syscall.close(fd)
            return .failed(e)
        }
    }

    /// Shuts down both directions, which wakes a thread blocked in accept, recv or poll on `fd`.
    public static func shutdownBoth(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Half-closes the write side (used before a lingering close).
    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }
}
