import FakeOllama
import Foundation
import Glibc
import Testing
import Tollgate

/// The JSON access log written to a file: one parseable object per request with the documented fields, token
/// counts from both API families as they stream, never a credential, and a reopen after logrotate moved the file.
@Suite struct OpsAccessLogTests {
    static let password = "s3cret-Pa55word"
    static let basic = Credential.basic("alice", password)
    static let bearer = Credential.bearer("alice", password)
    static let fields: Set<String> = ["time", "request_id", "client", "user", "method", "path", "status", "bytes_in",
                                      "bytes_out", "duration_ms", "ttfb_ms", "upstream_ms", "model", "prompt_tokens",
                                      "completion_tokens", "rate_limit", "auth", "end"]

    static func withLog(_ path: String, body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}\(password)\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.accessLog = .json
            config.accessLogPath = path
        }, body: body)
    }

    @Test func everyLineIsJSONWithTheFieldsAndNoCredential() throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        try Self.withLog(log) { proxy, _ in
            #expect(try proxy.fetch(Req.get("/api/version", Self.basic)).status == 200)
            #expect(try proxy.fetch(Req.get("/api/tags", Credential.basic("alice", "wrong-" + Self.password))).status == 401)
            #expect(try proxy.fetch(Req.get("/api/tags")).status == 401)
            #expect(try proxy.fetch(Req.get("/api/nope", Self.bearer)).status == 404)
            #expect(try proxy.fetch(Req.get("/healthz")).status == 200)
            let lines = OpsFiles.waitForLines(log, count: 5)
            #expect(lines.count == 5, "\(lines)")
            let objects = accessLogObjects(lines)
            for (line, object) in zip(lines, objects) {
                let object = try #require(object, "not a JSON object: \(line)")
                #expect(Set(object.keys) == Self.fields, "\(line)")
                #expect(!line.contains(Self.password), "the password is in the log: \(line)")
                #expect(!line.contains(Data64.encode("alice:" + Self.password)), "the Authorization value is in the log: \(line)")
                #expect(!line.contains("Basic ") && !line.contains("Bearer "), "\(line)")
                #expect(object["client"] as? String == "127.0.0.1")
                #expect((object["request_id"] as? String)?.isEmpty == false)
                #expect(object["duration_ms"] is NSNumber)
            }
            #expect(objects.map { $0?["status"] as? Int } == [200, 401, 401, 404, 200])
            #expect(objects.map { $0?["path"] as? String } == ["/api/version", "/api/tags", "/api/tags", "/api/nope", "/healthz"])
            #expect(objects[0]?["user"] as? String == "alice")
            #expect(objects[0]?["auth"] as? String == "allowed")
            #expect(objects[1]?["user"] as? String == "alice", "a refused login names the user it tried: \(lines[1])")
            #expect(objects[1]?["auth"] as? String == "denied", "\(lines[1])")
            #expect(objects[2]?["user"] is NSNull, "no credentials, no user: \(lines[2])")
            #expect(objects[3]?["user"] as? String == "alice")
            #expect(objects[4]?["auth"] as? String == "public")
        }
    }

    @Test func behindATrustedProxyTheClientItNamesIsLogged() throws {
        // As the rate limit and the login throttle count it: the forwarded client, not the proxy's address.
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        let users = try TestUsers.parse("alice:{PLAIN}\(Self.password)\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.accessLog = .json
            config.accessLogPath = log
            config.trustedProxies = [CIDR(parsing: "127.0.0.1/32")!]
        }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            #expect(try client.exchange(Req.get("/api/version", "X-Forwarded-For: 203.0.113.7\r\n" + Self.basic)).status == 200)
            #expect(try client.exchange(Req.get("/api/version", Self.basic)).status == 200)
            let lines = OpsFiles.waitForLines(log, count: 2)
            #expect(accessLogObjects(lines).map { $0?["client"] as? String } == ["203.0.113.7", "127.0.0.1"])
        }
    }

    @Test func aStreamedGenerateLogsUserModelAndOllamasTokenCounts() throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        try Self.withLog(log) { proxy, _ in
            let response = try proxy.fetch(Req.generate(Self.basic))
            #expect(response.status == 200)
            let counts = try #require(finalOllamaCounts(response), "\(response.text)")
            let object = try #require(accessLogObjects(OpsFiles.waitForLines(log, count: 1)).first ?? nil)
            #expect(object["user"] as? String == "alice")
            #expect(object["method"] as? String == "POST")
            #expect(object["path"] as? String == "/api/generate")
            #expect(object["status"] as? Int == 200)
            #expect(object["model"] as? String == "mistral:7b")
            #expect(object["prompt_tokens"] as? Int == counts.prompt)
            #expect(object["completion_tokens"] as? Int == counts.completion)
            #expect(object["bytes_out"] as? Int ?? 0 >= response.rawBody.count)
            #expect(object["ttfb_ms"] is NSNumber && object["upstream_ms"] is NSNumber)
            // Never the prompt.
            #expect(!OpsFiles.text(log).contains("sky"))
        }
    }

    @Test func anOpenAIStreamWithIncludeUsageLogsItsUsage() throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        try Self.withLog(log) { proxy, _ in
            let body = #"{"model":"mistral:7b","stream":true,"stream_options":{"include_usage":true},"#
                + #""messages":[{"role":"user","content":"a secret prompt"}]}"#
            let response = try proxy.fetch(Req.post("/v1/chat/completions", body, Self.bearer))
            #expect(response.status == 200)
            let usage = try #require(openAIStreamUsage(response), "\(response.text)")
            let lines = OpsFiles.waitForLines(log, count: 1)
            let object = try #require(accessLogObjects(lines).first ?? nil)
            #expect(object["user"] as? String == "alice")
            #expect(object["path"] as? String == "/v1/chat/completions")
            #expect(object["model"] as? String == "mistral:7b")
            #expect(object["prompt_tokens"] as? Int == usage.prompt)
            #expect(object["completion_tokens"] as? Int == usage.completion)
            #expect(!lines[0].contains("secret prompt") && !lines[0].contains(Self.password))
        }
    }

    @Test func reopenAfterARenameWritesANewFileAtThePath() throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        let rotated = dir.file("access.log.1")
        try Self.withLog(log) { proxy, _ in
            #expect(try proxy.fetch(Req.get("/api/version?first", Self.basic)).status == 200)
            #expect(OpsFiles.waitForLines(log, count: 1).count == 1)
            // logrotate: rename, then SIGUSR1. Until the reopen the old file (now renamed) keeps getting lines.
            #expect(rename(log, rotated) == 0)
            #expect(try proxy.fetch(Req.get("/api/version?second", Self.basic)).status == 200)
            #expect(OpsFiles.waitForLines(rotated, count: 2).count == 2)
            let sink = try #require(proxy.server.logSink)
            sink.reopen()
            #expect(try proxy.fetch(Req.get("/api/version?third", Self.basic)).status == 200)
            let fresh = OpsFiles.waitForLines(log, count: 1)
            #expect(fresh.count == 1)
            #expect(accessLogObjects(fresh).first??["status"] as? Int == 200)
            #expect(OpsFiles.lines(rotated).count == 2)
        }
    }
}
