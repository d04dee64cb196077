import Testing
@testable import TollgateHTTP

@Suite("Request line")
struct RequestLineTests {
    @Test("A simple GET parses into method, target, path, version and Host")
    func simpleGet() throws {
        let (result, head, buffer) = parseRequest("GET /api/tags?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        #expect(result == .complete)
        #expect(head.method == .get)
        #expect(text(buffer, head.methodRange) == "GET")
        #expect(text(buffer, head.target) == "/api/tags?x=1")
        #expect(text(buffer, head.path) == "/api/tags")
        #expect(head.version == .http11)
        #expect(text(buffer, try #require(head.host)) == "example.com")
        #expect(head.framing == .none)
        #expect(head.keepAlive)
        #expect(head.headLength == buffer.count)
    }

    @Test("Methods are recognised case-sensitively", arguments: [
        ("GET", HTTPMethod.get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
        ("OPTIONS", .options), ("PATCH", .patch), ("CONNECT", .other), ("TRACE", .trace), ("get", .other),
        ("PROPFIND", .other), ("M-SEARCH", .other),
    ])
    func methods(name: String, method: HTTPMethod) {
        // CONNECT takes authority-form, which a reverse proxy refuses; check its recognition directly.
        if name == "CONNECT" {
            let buffer = bytes(name)
            #expect(HTTPMethod.recognize(buffer, 0..<buffer.count) == .connect)
            #expect(HTTPMethod.connect.name == name)
            return
        }
        let (result, head, buffer) = parseRequest("\(name) / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(result == .complete)
        #expect(head.method == method)
        #expect(text(buffer, head.methodRange) == name)
        // A recognised method's name is the token as sent (it names the method in logs and signatures).
        #expect(head.method.name == (method == .other ? nil : name))
    }

    @Test("Malformed request lines are 400", arguments: [
        "GET  / HTTP/1.1",        // two spaces
        "GET /  HTTP/1.1",        // two spaces before version
        " GET / HTTP/1.1",        // leading space
        "GET / HTTP/1.1 ",        // trailing space
        "GET /",                  // HTTP/0.9 style
        "GET / ",                 // empty version
        "G(T / HTTP/1.1",         // non-tchar in method
        "GET\t/ HTTP/1.1",        // tab separator
        "GET /a\u{7F}b HTTP/1.1", // DEL in target
        "GET /caf\u{E9} HTTP/1.1", // non-ASCII in target
        "/ HTTP/1.1",             // no method
        "GET / http/1.1",         // lowercase protocol name
        "GET / HTTP/1",           // garbage version
        "GET / HTTP/1.1.1",
        "GET / FOO/1.1",
    ])
    func malformed(line: String) {
        let (result, _, _) = parseRequest(line + "\r\nHost: h\r\n\r\n")
        #expect(status(result) == 400, "\(line)")
    }

    @Test("Other HTTP versions are 505", arguments: ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"])
    func unsupportedVersion(version: String) {
        let (result, _, _) = parseRequest("GET / \(version)\r\nHost: h\r\n\r\n")
        #expect(status(result) == 505)
    }

    @Test("HTTP/1.0 is accepted without Host")
    func http10() {
        let (result, head, _) = parseRequest("GET / HTTP/1.0\r\n\r\n")
        #expect(result == .complete)
        #expect(head.version == .http10)
        #expect(head.host == nil)
        #expect(!head.keepAlive)
    }

    @Test("Origin-form targets split path and query", arguments: [
        ("/", "/"), ("/a/b", "/a/b"), ("/a?b=c?d", "/a"), ("/?", "/"), ("/a%20b", "/a%20b"),
    ])
    func originForm(target: String, path: String) {
        let (result, head, buffer) = parseRequest("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(result == .complete)
        #expect(text(buffer, head.target) == target)
        #expect(text(buffer, head.path) == path)
    }

    @Test("Absolute-form targets give their path part, \"/\" when empty", arguments: [
        ("http://example.com/api/chat?x", "/api/chat"), ("https://example.com:443/v1/models", "/v1/models"),
        ("http://example.com", "/"), ("HTTP://example.com?q=1", "/"), ("https://h/", "/"),
    ])
    func absoluteForm(target: String, path: String) {
        let (result, head, buffer) = parseRequest("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(result == .complete)
        #expect(text(buffer, head.target) == target)
        #expect(text(buffer, head.path) == path)
    }

    @Test("Other target forms are 400", arguments: [
        "example.com:443", "api/tags", "ftp://example.com/", "http://", "http:///path", "http://user@host/",
        "*", "%2F",
    ])
    func badTargets(target: String) {
        let (result, _, _) = parseRequest("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(status(result) == 400, "\(target)")
    }

    @Test("Asterisk-form is accepted for OPTIONS only")
    func asteriskForm() {
        let (result, head, buffer) = parseRequest("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(result == .complete)
        #expect(text(buffer, head.path) == "*")
        #expect(status(parseRequest("GET * HTTP/1.1\r\nHost: h\r\n\r\n").0) == 400)
    }

    @Test("A few empty lines before the request line are skipped and counted in headLength")
    func leadingEmptyLines() {
        let request = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
        let (result, head, buffer) = parseRequest(request)
        #expect(result == .complete)
        #expect(text(buffer, head.methodRange) == "GET")
        #expect(head.headLength == buffer.count)
    }

    @Test("Too many empty lines, or a bare LF among them, are 400")
    func tooManyEmptyLines() {
        let many = String(repeating: "\r\n", count: RequestParser.maxLeadingEmptyLines + 1)
        #expect(status(parseRequest(many + "GET / HTTP/1.1\r\nHost: h\r\n\r\n").0) == 400)
        #expect(status(parseRequest("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").0) == 400)
    }

    @Test("A request line longer than the limit is 414 before its end arrives")
    func uriTooLong() {
        let limits = HTTPLimits(maxRequestLine: 64)
        let prefix = "GET /" + String(repeating: "a", count: 60)  // 65 bytes, no line end yet
        #expect(status(parseRequest(prefix, limits: limits).0) == 414)
        // Exactly at the limit is fine.
        let exact = "GET /" + String(repeating: "a", count: 50) + " HTTP/1.1"  // 64 bytes
        #expect(parseRequest(exact + "\r\nHost: h\r\n\r\n", limits: limits).0 == .complete)
        #expect(parseRequest(exact, limits: limits).0 == .needMore)
    }

    @Test("A request line with the default limits: 8 KiB URI passes, 9 KiB is 414")
    func uriTooLongDefault() {
        let ok = "GET /" + String(repeating: "a", count: 8000) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(parseRequest(ok).0 == .complete)
        let long = "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(status(parseRequest(long).0) == 414)
    }
}

/// The version token compared as one word: exactly `HTTP/1.1` and `HTTP/1.0`, case-sensitive; another `HTTP/d.d`
/// is 505, anything else 400; in any position of a buffer.
@Suite struct VersionWordTests {
    @Test func everyOneByteChangeOfBothVersions() {
        for version in ["HTTP/1.1", "HTTP/1.0"] {
            let base = Array(version.utf8)
            for position in 0..<8 {
                for b in [UInt8](arrayLiteral: 0x00, 0x20, 0x30, 0x31, 0x32, 0x39, 0x2E, 0x68, 0x74, 0x70, 0x48,
                                 0x54, 0x50, 0x2F, 0x7F, 0xFF) {
                    var token = base
                    token[position] = b
                    let buffer = Array("GET / ".utf8) + token + Array("\r\n".utf8)
                    let result = RequestParser.parseVersion(buffer, 6..<14)
                    let text = String(decoding: token, as: UTF8.self)
                    switch result {
                    case .success(let v):
                        #expect(text == "HTTP/1.1" && v == .http11 || text == "HTTP/1.0" && v == .http10, "\(token)")
                    case .failure(let error):
                        #expect(text != "HTTP/1.1" && text != "HTTP/1.0")
                        let otherVersion = text.hasPrefix("HTTP/") && token[5] >= 0x30 && token[5] <= 0x39
                            && token[6] == 0x2E && token[7] >= 0x30 && token[7] <= 0x39
                        #expect(error.status == (otherVersion ? 505 : 400), "\(token)")
                    }
                }
            }
        }
        // Shorter or longer than eight bytes: never a version.
        let buffer = Array("HTTP/1.11".utf8)
        if case .success = RequestParser.parseVersion(buffer, 0..<9) { Issue.record("HTTP/1.11 accepted") }
        if case .success = RequestParser.parseVersion(buffer, 0..<7) { Issue.record("HTTP/1. accepted") }
    }
}
