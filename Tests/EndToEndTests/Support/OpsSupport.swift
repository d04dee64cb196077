import Foundation
import Glibc
import Testing
import Tollgate
import TollgateIO

/// A fresh temporary directory for one test's files (access logs, certificates); removed with its files when
/// released.
final class OpsTempDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/tollgate-e2e-ops-XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw WireError("mkdtemp failed: errno \(errno)")
        }
        path = String(cString: dir)
    }

    deinit {
        if let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for name in names { unlink(path + "/" + name) }
        }
        rmdir(path)
    }

    /// `path/name`.
    func file(_ name: String) -> String { path + "/" + name }
}

/// Reading files the proxy writes.
enum OpsFiles {
    /// The file's text, or "" when it does not exist.
    static func text(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// The file's non-empty lines.
    static func lines(_ path: String) -> [String] {
        text(path).split(separator: "\n").map(String.init)
    }

    /// Waits (bounded) until the file holds at least `count` lines, then returns them all (the log is written by
    /// its own thread, so a line lands a moment after the response).
    static func waitForLines(_ path: String, count: Int) -> [String] {
        _ = waitUntil { lines(path).count >= count }
        return lines(path)
    }

    /// Copies `from` to `to` (replacing it) by rename of a temporary copy, as certbot does.
    static func install(_ from: String, as to: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: from))
        let temporary = to + ".tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, to) == 0 else { throw WireError("rename \(temporary): errno \(errno)") }
    }
}

/// A scrape of the metrics listener: sample lines by name-with-labels.
struct MetricsScrape {
    /// The response as received.
    let response: Response
    /// "name{labels}" (exactly as exposed) → value.
    let samples: [String: Double]

    /// Scrapes `GET /metrics` on the proxy's first metrics listener over a new plain connection.
    init(_ proxy: Proxy) throws {
        let port = try #require(proxy.server.metricsAddresses.first?.port)
        let client = HTTPClient(try PlainStream(port: port))
        defer { client.close() }
        response = try client.exchange("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        var samples: [String: Double] = [:]
        for line in response.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        self.samples = samples
    }

    /// The sample's value, 0 when it is not exposed.
    subscript(_ name: String) -> Double { samples[name] ?? 0 }
}

/// The access-log lines of a file, each parsed as a JSON object (nil for a line that is not one).
func accessLogObjects(_ lines: [String]) -> [[String: Any]?] {
    lines.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
}

/// Token counts from a streamed `/api/generate` response's final `"done": true` line.
func finalOllamaCounts(_ response: Response) -> (prompt: Int, completion: Int)? {
    guard let last = response.text.split(separator: "\n").last,
          let object = (try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Any],
          object["done"] as? Bool == true,
          let prompt = object["prompt_eval_count"] as? Int, let completion = object["eval_count"] as? Int else { return nil }
    return (prompt, completion)
}

/// Token counts from the `usage` object of an OpenAI SSE stream (`stream_options.include_usage`).
func openAIStreamUsage(_ response: Response) -> (prompt: Int, completion: Int)? {
    for line in response.text.split(separator: "\n") where line.hasPrefix("data: {") {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8))) as? [String: Any],
              let usage = object["usage"] as? [String: Any], let choices = object["choices"] as? [Any], choices.isEmpty,
              let prompt = usage["prompt_tokens"] as? Int, let completion = usage["completion_tokens"] as? Int else { continue }
        return (prompt, completion)
    }
    return nil
}

/// A localhost port nothing listens on (bound, read back, closed).
func closedLocalPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &sin) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard fd >= 0, ok else { throw WireError("cannot bind: errno \(errno)") }
    return UInt16(bigEndian: sin.sin_port)
}
