import CTollgate
import Glibc

/// The outcome of a non-blocking read or write.
public enum IOResult: Sendable, Equatable {
    /// This many bytes moved (never zero for a read: zero is `.eof`).
    case bytes(Int)
    /// Nothing can move now; wait for readiness. `wantsWrite` is true when the socket must become writable
    /// (a TLS read can need a write and the other way round).
    case wouldBlock(wantsWrite: Bool)
    /// The peer closed its side.
    case eof
    /// The connection failed; `errno` or a TLS failure.
    case failed(Int32)
}

/// The one place that makes system calls: retries `EINTR`, maps `EAGAIN` to "would block",
/// and never retries `close` (swift-nio `System.swift`).
public enum Syscall {
    /// Reads into buffer[offset..<offset+count].
    @inline(__always)
    public static func read(_ fd: Int32, into buffer: inout [UInt8], at offset: Int, count: Int) -> IOResult {
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in
                Glibc.read(fd, raw.baseAddress! + offset, count)
            }
            if n > 0 { return .bytes(n) }
            if n == 0 { return .eof }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock(wantsWrite: false) }
            return .failed(e)
        }
    }

    /// Moves buffer[start..<start+count] to the front of the buffer (compacting a read buffer).
    public static func moveDown(_ buffer: inout [UInt8], from start: Int, count: Int) {
        precondition(start >= 0 && count >= 0 && start + count <= buffer.count)
        guard start > 0, count > 0 else { return }
        buffer.withUnsafeMutableBufferPointer { p in _ = memmove(p.baseAddress!, p.baseAddress! + start, count) }
    }

    /// Looks at up to `count` waiting bytes without taking them (MSG_PEEK).
    public static func peek(_ fd: Int32, into buffer: inout [UInt8], count: Int) -> IOResult {
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in
                Glibc.recv(fd, raw.baseAddress!, min(count, raw.count), Int32(MSG_PEEK))
            }
            if n > 0 { return .bytes(n) }
            if n == 0 { return .eof }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock(wantsWrite: false) }
            return .failed(e)
        }
    }

    /// Writes buffer[offset..<offset+count] with MSG_NOSIGNAL.
    @inline(__always)
    public static func write(_ fd: Int32, _ buffer: [UInt8], at offset: Int, count: Int) -> IOResult {
        while true {
            let n = buffer.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, count, Int32(MSG_NOSIGNAL))
            }
            if n >= 0 { return .bytes(n) }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock(wantsWrite: true) }
            return .failed(e)
        }
    }

    /// Writes all of bytes to a file or pipe (blocking descriptors: CLI and start-up use). Returns errno on failure.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            return n < 0 ? errno : EIO
        }
        return nil
    }

    /// The process environment.
    public static func environment() -> [String: String] {
        var result: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        return result
    }

    /// Closes a descriptor once; `EINTR` is not retried because Linux has already released the fd.
    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Sets O_NONBLOCK and FD_CLOEXEC.
    public static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    /// Clears O_NONBLOCK (a descriptor served by a blocking thread, as fake-ollama's are).
    public static func setBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 && flags & O_NONBLOCK != 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    }

    /// Sets an integer socket option.
    @discardableResult
    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
        var v = value
        return setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    /// The pending socket error (SO_ERROR), used to finish a non-blocking connect.
    public static func socketError(_ fd: Int32) -> Int32 {
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len) != 0 { return errno }
        return v
    }

    /// Monotonic time in nanoseconds.
    @inline(__always)
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Wall-clock time in nanoseconds since the epoch (for logs).
    public static func wallNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
    @discardableResult
    public static func raiseFileLimit() -> UInt64 {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return 0 }
        if rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        }
        return UInt64(rl.rlim_cur)
    }

    /// A human description of an errno value.
    /// A regular file's whole contents, at most `limit` bytes, or why not (a sentence without the path). Blocking:
    /// never on an event loop.
    public static func readWholeFile(_ path: String, limit: Int) -> Result<[UInt8], SocketError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(SocketError("cannot open: \(describe(errno))")) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(SocketError("cannot stat: \(describe(errno))")) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(SocketError("not a regular file")) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            switch read(fd, into: &chunk, at: 0, count: chunk.count) {
            case .bytes(let n):
                bytes += chunk[0..<n]
                if bytes.count > limit { return .failure(SocketError("larger than \(limit >> 20) MiB")) }
            case .eof:
                return .success(bytes)
            case .failed(let e):
                return .failure(SocketError("cannot read: \(describe(e))"))
            case .wouldBlock:
                return .failure(SocketError("cannot read: would block"))
            }
        }
    }

    public static func describe(_ e: Int32) -> String {
        String(cString: strerror(e))
    }

    /// Fills `bytes` from the kernel's random source.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var done = 0
            while done < count {
                let n = tg_getrandom(raw.baseAddress! + done, count - done)
                if n > 0 { done += n } else if errno != EINTR { break }
            }
        }
        return out
    }
}

extension String {
    /// Decodes a NUL-terminated C buffer.
    init(cBuffer: [CChar]) {
        let bytes = cBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        self = String(decoding: bytes, as: UTF8.self)
    }
}
