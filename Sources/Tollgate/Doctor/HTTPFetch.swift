import Glibc
import TollgateIO

/// A blocking `GET` for `tollgate doctor`'s questions to Ollama (`/api/version`, `/api/tags`): HTTP/1.0 with
/// `Connection: close`, so the answer is the bytes up to the close (Go's server never chunks a reply to HTTP/1.0),
/// with one deadline over connecting, sending and reading. Never on an event loop.
public enum HTTPFetch {
    /// What came back.
    public enum Result: Sendable, Equatable {
        /// An answer: its status and body.
        case response(status: Int, body: [UInt8])
        /// No answer: why ("connection refused", "no answer within 2000 ms").
        case failed(String)
    }

    /// Answers larger than this are cut (a model list is a few KiB per model).
    public static let maxBytes = 8 << 20

    /// `GET path` from `address` with `Host: host`.
    public static func get(_ address: SocketAddress, host: String, path: String, timeoutMillis: Int32) -> Result {
        let deadline = Syscall.monotonicNanos() + UInt64(max(1, timeoutMillis)) * 1_000_000
        func remainingMillis() -> Int32 {
            let now = Syscall.monotonicNanos()
            return now >= deadline ? 0 : Int32(min(UInt64(Int32.max), (deadline - now) / 1_000_000 + 1))
        }
        let fd: Int32
        switch Socket.connect(to: address) {
        case .connected(let f):
            fd = f
        case .failed(let e):
            return .failed(Syscall.describe(e))
        case .inProgress(let f):
            var p = pollfd(fd: f, events: Int16(POLLOUT), revents: 0)
            guard poll(&p, 1, remainingMillis()) == 1 else {
                Syscall.close(f)
                return .failed("no connection within \(timeoutMillis) ms")
            }
            let e = Syscall.socketError(f)
            guard e == 0 else {
                Syscall.close(f)
                return .failed(Syscall.describe(e))
            }
            fd = f
        }
        defer { Syscall.close(fd) }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\nAccept: application/json\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let wantWrite = sent < request.count
            var p = pollfd(fd: fd, events: Int16(wantWrite ? POLLOUT : POLLIN), revents: 0)
            let ready = poll(&p, 1, remainingMillis())
            if ready < 0 && errno == EINTR { continue }
            guard ready == 1 else { return .failed("no answer within \(timeoutMillis) ms") }
            if wantWrite {
                switch Syscall.write(fd, request, at: sent, count: request.count - sent) {
                case .bytes(let n): sent += n
                case .wouldBlock: continue
                case .eof: return .failed("closed before the request was sent")
                case .failed(let e): return .failed(Syscall.describe(e))
                }
                continue
            }
            switch Syscall.read(fd, into: &chunk, at: 0, count: chunk.count) {
            case .bytes(let n):
                received += chunk[0..<n]
                if received.count > maxBytes { return parse(received) }
            case .wouldBlock: continue
            case .eof: return parse(received)
            case .failed(let e):
                return received.isEmpty ? .failed(Syscall.describe(e)) : parse(received)
            }
        }
    }

    /// The status and body of a whole HTTP/1.x response (a chunked body is decoded, in case a server chunks anyway).
    static func parse(_ bytes: [UInt8]) -> Result {
        let separator: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
        guard let end = bytes.firstRange(of: separator) else { return .failed("not an HTTP answer") }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            return .failed("not an HTTP answer")
        }
        var body = Array(bytes[end.upperBound...])
        var chunked = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimming(" \t").lowercased()
            if name == "transfer-encoding" && value == "chunked" { chunked = true }
            if name == "content-length", let n = Int(value), n < body.count { body = Array(body[..<n]) }
        }
        if chunked { body = dechunk(body) }
        return .response(status: status, body: body)
    }

    /// The data of a chunked body (extensions and trailers ignored; a truncated body gives what arrived).
    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard let lineEnd = bytes[i...].firstRange(of: [0x0D, 0x0A]) else { break }
            let sizeText = String(decoding: bytes[i..<lineEnd.lowerBound], as: UTF8.self)
                .split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimming(" \t"), radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            out += bytes[start..<min(bytes.count, start + size)]
            i = start + size + 2
        }
        return out
    }
}

extension StringProtocol {
    /// The text without the given characters at either end.
    func trimming(_ set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
