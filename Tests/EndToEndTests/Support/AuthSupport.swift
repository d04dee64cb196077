import Foundation
import Glibc
import Testing
import Tollgate
import TollgateIO

/// Credential header lines (CRLF included) in each style a real client sends.
enum Credential {
    /// `Authorization: Basic base64(user:password)` (curl, browsers, httpx, ollama-python).
    static func basic(_ user: String, _ password: String) -> String {
        "Authorization: Basic \(Data("\(user):\(password)".utf8).base64EncodedString())\r\n"
    }

    /// `Authorization: Bearer user:password` (OpenAI SDKs, `OLLAMA_API_KEY`).
    static func bearer(_ user: String, _ password: String) -> String {
        "Authorization: Bearer \(user):\(password)\r\n"
    }

    /// `x-api-key: user:password` (Anthropic SDKs).
    static func apiKey(_ user: String, _ password: String) -> String {
        "x-api-key: \(user):\(password)\r\n"
    }
}

/// Request texts for the e2e tests; `extra` is raw header lines, each ending in CRLF.
enum Req {
    /// A GET (or another body-less method) with `Host: localhost`.
    static func get(_ path: String, _ extra: String = "", method: String = "GET") -> String {
        "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n\(extra)\r\n"
    }

    /// A POST (or another method) with a JSON Content-Length body.
    static func post(_ path: String, _ body: String, _ extra: String = "", method: String = "POST") -> String {
        "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\(extra)"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// A streamed `/api/generate` (NDJSON, fake-ollama's default model).
    static func generate(_ extra: String = "") -> String {
        post("/api/generate", #"{"model":"mistral:7b","prompt":"Why is the sky blue?"}"#, extra)
    }
}

extension HTTPClient {
    /// Sends `request` and reads its response.
    func exchange(_ request: String) throws -> Response {
        try send(request)
        return try readResponse()
    }
}

extension Proxy {
    /// Sends one request on a fresh TLS connection, reads the response, closes.
    func fetch(_ request: String) throws -> Response {
        let client = try tls()
        defer { client.close() }
        return try client.exchange(request)
    }

    /// As `expectOnlySentinelArrived`, with credentials on the sentinel (authentication on).
    func expectOnlySentinelArrived(after before: Int, credentials: String,
                                   sourceLocation: SourceLocation = #_sourceLocation) throws {
        let response = try fetch(Req.get("/api/version?sentinel", credentials))
        #expect(response.status == 200, sourceLocation: sourceLocation)
        let arrived = upstream.requests.dropFirst(before).map(\.target)
        #expect(arrived == ["/api/version?sentinel"], "reached the upstream: \(arrived)", sourceLocation: sourceLocation)
    }
}

/// Users files for tests.
enum TestUsers {
    /// Parses `text` as a users file (no file on disk, no reload).
    static func parse(_ text: String) throws -> UsersFile {
        UsersFile.parse(text, path: "e2e-users.htpasswd")
    }

    /// A `$2y$` bcrypt hash of `password` at cost 4 (the cheapest libcrypt allows).
    static func bcrypt(_ password: String) throws -> String {
        try #require(PasswordCrypt.bcrypt(password: Array(password.utf8), cost: 4))
    }
}

/// A users file in a fresh temporary directory, replaced the way editors and the CLI do it (write a temporary
/// file beside it, then rename over it). Removes the directory when released.
final class UsersFileOnDisk {
    let directory: String
    /// The users file's path.
    var path: String { directory + "/users.htpasswd" }

    /// Creates the directory and writes `text` as the users file.
    init(_ text: String) throws {
        var template = Array("/tmp/tollgate-e2e-users-XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw WireError("mkdtemp failed: errno \(errno)")
        }
        directory = String(cString: dir)
        try write(text, to: path)
    }

    deinit {
        unlink(path)
        unlink(directory + "/.users.tmp")
        rmdir(directory)
    }

    /// Replaces the file atomically with `text` (rename over it).
    func replace(with text: String) throws {
        let temporary = directory + "/.users.tmp"
        try write(text, to: temporary)
        guard rename(temporary, path) == 0 else { throw WireError("rename failed: errno \(errno)") }
    }

    /// Rewrites the file in place (truncate and write, as `htpasswd` does): same inode.
    func rewriteInPlace(with text: String) throws {
        try write(text, to: path)
    }

    /// Deletes the file, then creates it again with `text`.
    func deleteAndRecreate(with text: String) throws {
        guard unlink(path) == 0 else { throw WireError("unlink failed: errno \(errno)") }
        try write(text, to: path)
    }

    private func write(_ text: String, to file: String) throws {
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o640)
        guard fd >= 0 else { throw WireError("open \(file): errno \(errno)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw WireError("write \(file): errno \(errno)") }
    }
}

/// Polls `condition` every `pollMillis` until it holds or `timeoutSeconds` pass; returns whether it held.
/// For outcomes that need real time (a reload, a queue timeout): the bound is generous, never asserted as speed.
func waitUntil(timeoutSeconds: Double = eventTimeout, pollMillis: Int = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Syscall.monotonicNanos() + UInt64(timeoutSeconds * 1_000_000_000)
    while true {
        if try condition() { return true }
        if Syscall.monotonicNanos() >= deadline { return false }
        usleep(useconds_t(pollMillis * 1000))
    }
}

/// The response body parsed as a JSON object, or nil.
func jsonObject(_ response: Response) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
}

/// Checks an error Tollgate answered itself: `status`, a JSON body in `family`'s shape (Ollama `{"error": "..."}`,
/// OpenAI `{"error": {"message", "type", "param", "code"}}`, Anthropic `{"type": "error", "error": {"type",
/// "message"}}`), and, when given, the OpenAI `code` or the Anthropic error `type`.
func expectError(_ response: Response, status: Int, family: APIFamily, openAICode: String? = nil,
                 anthropicType: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == status, "body: \(response.text)", sourceLocation: sourceLocation)
    #expect(response.head.header("Content-Type")?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
    guard let object = jsonObject(response) else {
        Issue.record("not a JSON object: \(response.text)", sourceLocation: sourceLocation)
        return
    }
    switch family {
    case .ollama:
        #expect(Set(object.keys) == ["error"], "\(response.text)", sourceLocation: sourceLocation)
        #expect((object["error"] as? String)?.isEmpty == false, "\(response.text)", sourceLocation: sourceLocation)
    case .openAI:
        #expect(Set(object.keys) == ["error"], "\(response.text)", sourceLocation: sourceLocation)
        let error = object["error"] as? [String: Any]
        #expect(error.map { Set($0.keys) } == ["message", "type", "param", "code"], "\(response.text)",
                sourceLocation: sourceLocation)
        #expect((error?["message"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(error?["type"] is String, sourceLocation: sourceLocation)
        if let openAICode { #expect(error?["code"] as? String == openAICode, "\(response.text)", sourceLocation: sourceLocation) }
    case .anthropic:
        #expect(Set(object.keys) == ["type", "error"], "\(response.text)", sourceLocation: sourceLocation)
        #expect(object["type"] as? String == "error", sourceLocation: sourceLocation)
        let error = object["error"] as? [String: Any]
        #expect(error.map { Set($0.keys) } == ["type", "message"], "\(response.text)", sourceLocation: sourceLocation)
        #expect((error?["message"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        if let anthropicType {
            #expect(error?["type"] as? String == anthropicType, "\(response.text)", sourceLocation: sourceLocation)
        }
    }
}

/// The `Retry-After` value as whole seconds, or nil when absent or not a plain non-negative integer.
func retryAfterSeconds(_ response: Response) -> Int? {
    guard let text = response.head.header("Retry-After"), !text.isEmpty, text.allSatisfy(\.isASCII),
          text.allSatisfy(\.isNumber) else { return nil }
    return Int(text)
}

/// An authenticator's counters (it exists whenever the config has users).
func authStats(_ proxy: Proxy, sourceLocation: SourceLocation = #_sourceLocation) throws -> Authenticator.Stats {
    try #require(proxy.server.authenticator, sourceLocation: sourceLocation).stats
}

/// Base64 for literal test values.
enum Data64 {
    static func encode(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
}

/// Pre-connected clients handed to `concurrentPerform`; each index is used by one thread only.
struct UncheckedClients: @unchecked Sendable {
    let clients: [HTTPClient]
    init(_ clients: [HTTPClient]) { self.clients = clients }
}

extension String {
    /// The string with the first occurrence of `target` replaced.
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
