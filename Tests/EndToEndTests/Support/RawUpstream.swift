import Dispatch
import Foundation
import Glibc
import Synchronization

/// A one-shot upstream that records the exact bytes Tollgate sends it: accepts one connection, reads until the
/// request (head plus chunked body) is complete, answers `200 ok`, and keeps the bytes for the test.
final class RawUpstream: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let captured = Mutex<[UInt8]>([])
    private let done = DispatchSemaphore(value: 0)

    private let reply: [UInt8]

    /// Listens on 127.0.0.1:0 and starts waiting for the connection; answers `reply` (bytes as sent).
    init(reply: [UInt8] = bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")) throws {
        self.reply = reply
        (listenFD, port) = try RawUpstream.listenOnLoopback()
        DispatchQueue.global().async { [self] in serveOne() }
    }

    deinit { Glibc.close(listenFD) }

    /// A blocking listening socket on 127.0.0.1 and a free port, for the hand-written upstreams of the tests.
    /// Accepts on `listenFD` until it is shut down, on a thread of its own. `accepted` runs on that thread, in the
    /// order the connections came (to number them); the work it returns runs on a new thread each (a real thread:
    /// test upstreams block, and the global dispatch queue has only as many threads as cores).
    static func acceptEach(_ listenFD: Int32, _ accepted: @escaping @Sendable (Int32) -> @Sendable () -> Void) {
        Thread.detachNewThread {
            while true {
                let fd = accept(listenFD, nil, nil)
                guard fd >= 0 else { return }
                Thread.detachNewThread(accepted(fd))
            }
        }
    }

    static func listenOnLoopback() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &sin) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard fd >= 0, ok else { throw WireError("cannot listen: errno \(errno)") }
        return (fd, UInt16(bigEndian: sin.sin_port))
    }

    private func serveOne() {
        defer { done.signal() }
        var tv = timeval(tv_sec: ClientSocket.ioTimeoutSeconds, tv_usec: 0)
        setsockopt(listenFD, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let fd = accept(listenFD, nil, nil)
        guard fd >= 0 else { return }
        defer { Glibc.close(fd) }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !received.ends(with: bytes("\r\n0\r\n\r\n")) && !Self.lengthComplete(received) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { break }
            received += buffer[0..<n]
            captured.withLock { $0 = received }
        }
        _ = reply.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// A request with a Content-Length whose body has all arrived, or one without a body.
    static func lengthComplete(_ received: [UInt8]) -> Bool {
        let text = String(decoding: received, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return false }
        let head = text[..<end.lowerBound]
        // A head with neither framing field has no body (a GET): complete at its end.
        if !head.contains("\r\nContent-Length: ") && !head.contains("\r\nTransfer-Encoding: chunked") { return true }
        guard let field = head.range(of: "\r\nContent-Length: ") else { return false }
        let digits = text[field.upperBound...].prefix { $0.isNumber }
        guard let n = Int(digits) else { return false }
        return received.afterHead.count >= n
    }

    /// Waits (bounded) for the exchange to finish and returns what arrived, head and body.
    func received() -> [UInt8] {
        _ = done.wait(timeout: .now() + eventTimeout)
        return captured.withLock { $0 }
    }
}

extension Array where Element == UInt8 {
    /// Whether the array ends with `suffix`.
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }

    /// The index just past the first CRLF CRLF (where a message's head ends), nil when there is none yet.
    var headEnd: Int? {
        guard count >= 4 else { return nil }
        for i in 0...(count - 4) where self[i] == 0x0D && self[i + 1] == 0x0A && self[i + 2] == 0x0D && self[i + 3] == 0x0A {
            return i + 4
        }
        return nil
    }

    /// The bytes after the first CRLF CRLF (the body of a message), or [] when there is none.
    var afterHead: [UInt8] { headEnd.map { Array(self[$0...]) } ?? [] }
}
