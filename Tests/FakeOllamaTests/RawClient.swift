import Glibc

/// A blocking test client over a raw TCP socket, so tests see exactly the bytes on the wire.
final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    /// A parsed response: head text, de-chunked body, the individual chunks, and whether framing ended properly.
    struct Response {
        var head: String
        var status: Int
        var body: [UInt8]
        var chunks: [[UInt8]]
        var sawZeroChunk: Bool
        var bodyText: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? {
            for line in head.split(separator: "\r\n").dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == name.lowercased() {
                    return parts[1].trimmingCharacters(in: " ")
                }
            }
            return nil
        }
    }

    struct Failure: Error { var why: String }

    /// Connects to 127.0.0.1:`port`; throws if the connection is refused.
    ///
    /// `fd` is assigned only after a successful connect: once every stored property is set, a throwing class
    /// initializer runs `deinit`, and a `close` here followed by the one in `deinit` would close the number twice,
    /// possibly after another test's thread had been given it (the tests share one process).
    init(port: UInt16) throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if s < 0 { throw Failure(why: "socket: \(String(cString: strerror(errno)))") }
        // A hung server fails the test instead of hanging it; generous, so a loaded machine is never mistaken
        // for a hung server.
        var tv = timeval(tv_sec: RawClient.timeoutSeconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let why = String(cString: strerror(errno))
            close(s)
            throw Failure(why: "connect: \(why)")
        }
        fd = s
    }

    /// Bound on every blocking read and every server-side wait in these tests. Only a broken server reaches it.
    static let timeoutSeconds = 60

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends a request with a Content-Length body.
    func request(_ method: String, _ path: String, host: String = "127.0.0.1:11434", body: String? = nil,
                 extra: String = "") {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n\(extra)"
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        send(text)
    }

    /// Reads more bytes; false on EOF, error or timeout.
    @discardableResult
    func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        var n: Int
        repeat {
            // SO_RCVTIMEO makes recv fail with EINTR on any signal, even with SA_RESTART (signal(7)).
            n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        } while n < 0 && errno == EINTR
        if n <= 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// Whether bytes are waiting right now (non-blocking check).
    func hasPendingBytes() -> Bool {
        if !buffer.isEmpty { return true }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
    }

    private func readLine() throws -> String {
        while true {
            if let i = buffer.firstIndex(of: 10), i > 0, buffer[i - 1] == 13 {
                let line = String(decoding: buffer[0..<(i - 1)], as: UTF8.self)
                buffer.removeFirst(i + 1)
                return line
            }
            guard fill() else { throw Failure(why: "EOF in line") }
        }
    }

    private func readExactly(_ n: Int) throws -> [UInt8] {
        while buffer.count < n { guard fill() else { throw Failure(why: "EOF in data") } }
        let out = Array(buffer[0..<n])
        buffer.removeFirst(n)
        return out
    }

    /// Reads the head of a response.
    func readHead(headRequest: Bool = false) throws -> Response {
        var head = ""
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            head += line + "\r\n"
        }
        let status = Int(head.split(separator: " ")[1]) ?? 0
        return Response(head: head, status: status, body: [], chunks: [], sawZeroChunk: false)
    }

    /// Reads one chunk of a chunked body; nil for the zero chunk, throws on EOF.
    func readChunk() throws -> [UInt8]? {
        let sizeLine = try readLine()
        guard let size = Int(sizeLine, radix: 16) else { throw Failure(why: "bad chunk size \(sizeLine)") }
        if size == 0 {
            _ = try readLine()
            return nil
        }
        let data = try readExactly(size)
        _ = try readExactly(2)
        return data
    }

    /// Reads a whole response (Content-Length or chunked). A chunked body cut short returns with
    /// `sawZeroChunk == false` instead of throwing.
    func readResponse(headRequest: Bool = false) throws -> Response {
        var r = try readHead()
        if headRequest { return r }
        if r.header("Transfer-Encoding") == "chunked" {
            while true {
                let chunk: [UInt8]?
                do { chunk = try readChunk() } catch { return r }
                guard let data = chunk else {
                    r.sawZeroChunk = true
                    return r
                }
                r.chunks.append(data)
                r.body += data
            }
        }
        let n = Int(r.header("Content-Length") ?? "0") ?? 0
        r.body = try readExactly(n)
        return r
    }

    /// Whether the server closed the connection (reads until EOF; bytes after the response count as "no").
    func readsEOF() -> Bool {
        buffer.isEmpty && !fill()
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
