import Glibc
import TollgateIO

/// A start-up check that something listens at the upstream address (blocking, before any loop runs).
public enum UpstreamProbe {
    /// True if a TCP connect succeeds within `timeoutMillis`.
    public static func reachable(_ address: SocketAddress, timeoutMillis: Int32 = 500) -> Bool {
        switch Socket.connect(to: address) {
        case .connected(let fd):
            Syscall.close(fd)
            return true
        case .failed:
            return false
        case .inProgress(let fd):
            defer { Syscall.close(fd) }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&p, 1, timeoutMillis) == 1 else { return false }
            return Syscall.socketError(fd) == 0
        }
    }
}
