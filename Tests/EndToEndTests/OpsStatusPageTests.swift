import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

/// The status page end to end: `GET /status` on the metrics listener to anyone who reaches it, and on the TLS
/// listener to administrators only (401 without credentials, 403 for other users, no route with authentication off),
/// served as HTML under a strict Content-Security-Policy, showing the traffic the ledger recorded (user names
/// escaped) and the quota balances. A real browser (Debian's headless Chromium) loads it with no console error or
/// CSP violation, and its screenshot is kept as `.build/status-page.png`; that test skips, saying why, when
/// Chromium is not installed (.ci/run installs it).
@Suite struct OpsStatusPageTests {
    static let alice = Credential.basic("alice", "pw-a")
    static let bob = Credential.basic("bob", "pw-b")
    static let eve = Credential.basic("<i>eve</i>", "pw-e")
    static let csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A proxy with users (alice the admin, bob, and a user whose name is markup), a quota policy, the ledger and
    /// a metrics listener, after a request from each user; `body` gets it once every row is written.
    static func withTraffic(configure: (inout ServerConfig) -> Void = { _ in },
                            _ body: (Proxy) throws -> Void) throws {
        let dir = try OpsTempDirectory()
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n<i>eve</i>:{PLAIN}pw-e\n")
        let policies = try ServerConfig(resolved: ConfigResolver.resolve(
            flags: ["policy": ["* tokens-per-day=100000", "bob requests-per-day=50"]], environment: [:], file: nil),
            cores: 1).policies
        try withProxyAndFake(configure: { config in
            config.users = users
            config.admins = ["alice"]
            config.policies = policies
            config.databasePath = StateDatabase.path(in: dir.path + "/state")
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
            configure(&config)
        }) { proxy, _ in
            for user in [Self.alice, Self.bob, Self.eve] {
                #expect(try proxy.fetch(Req.generate(user)).status == 200)
            }
            try #require(proxy.server.ledger).sync()
            try body(proxy)
        }
    }

    /// `GET path` on the proxy's metrics listener.
    static func metricsGet(_ proxy: Proxy, _ path: String = "/status", method: String = "GET",
                           host: String = "localhost") throws -> Response {
        let port = try #require(proxy.server.metricsAddresses.first?.port)
        let client = HTTPClient(try PlainStream(port: port))
        defer { client.close() }
        try client.send("\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        return try client.readResponse(requestWasHead: method == "HEAD")
    }

    static func expectPageHeaders(_ response: Response, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == 200, sourceLocation: sourceLocation)
        #expect(response.head.header("Content-Type") == "text/html; charset=utf-8", sourceLocation: sourceLocation)
        #expect(response.head.header("Content-Security-Policy") == csp, sourceLocation: sourceLocation)
        #expect(response.head.header("Cache-Control") == "no-store", sourceLocation: sourceLocation)
        #expect(response.head.header("X-Content-Type-Options") == "nosniff", sourceLocation: sourceLocation)
    }

    @Test func theMetricsListenerServesThePageWithTheLedgersTraffic() throws {
        try Self.withTraffic { proxy in
            let page = try Self.metricsGet(proxy)
            Self.expectPageHeaders(page)
            let html = page.text
            #expect(html.hasPrefix("<!DOCTYPE html>"))
            #expect(html.contains("<div class=\"tile ok\"><div class=\"label\">Ollama</div><div class=\"value\">up</div>"))
            #expect(html.contains("<td>127.0.0.1:\(proxy.upstream.port)</td><td><span class=\"ok\">healthy</span>"))
            #expect(html.contains("<div class=\"label\">Certificate</div>"), "the TLS listener's certificate expiry")
            // The ledger's rows: three requests today, tokens per user and per model.
            #expect(html.contains("answered <span class=\"muted\">3</span>"), "\(html)")
            #expect(html.contains("</span>alice <span class=\"muted\">"))
            #expect(html.contains("</span>bob <span class=\"muted\">"))
            #expect(html.contains("</span>mistral:7b <span class=\"muted\">"))
            // The user whose name is markup is text, never markup.
            #expect(html.contains("&lt;i&gt;eve&lt;/i&gt;"))
            #expect(!html.contains("<i>eve</i>"))
            // Quotas: everyone has a day's token quota, bob a request quota too.
            #expect(html.contains("<td>bob</td>"))
            #expect(html.contains("/ 100,000"))
            #expect(html.contains(" 1 / 50 "))
            let head = try Self.metricsGet(proxy, method: "HEAD")
            #expect(head.status == 200 && head.body.isEmpty)
            let other = try Self.metricsGet(proxy, "/nothing")
            #expect(other.status == 404 && other.text.contains("GET /metrics and GET /status only"))
        }
    }

    @Test func theMetricsListenerServesThePageOnlyForThisMachinesNames() throws {
        // A page elsewhere that rebinds its own name to the listener's address reaches it from the operator's
        // browser with that name as Host: it gets no page.
        try Self.withTraffic(configure: { $0.acmeDomains = ["gpu.example.net"] }) { proxy in
            let port = try #require(proxy.server.metricsAddresses.first?.port)
            for host in ["localhost", "127.0.0.1:\(port)", "[::1]:\(port)", "LOCALHOST.", "gpu.example.net",
                         "app.localhost:8080"] {
                #expect(try Self.metricsGet(proxy, host: host).status == 200, "\(host)")
            }
            for host in ["evil.example", "evil.example:\(port)", "127.0.0.1.evil.example", "localhost.evil.example",
                         "[::1", "localhost:x"] {
                let refused = try Self.metricsGet(proxy, host: host)
                #expect(refused.status == 421, "\(host)")
                #expect(refused.text.contains("answers only for this machine's addresses and names"), "\(refused.text)")
                #expect(!refused.text.contains("alice"))
            }
            // An absolute-form target names its host too.
            #expect(try Self.metricsGet(proxy, "http://evil.example/status").status == 421)
            #expect(try Self.metricsGet(proxy, "http://127.0.0.1:\(port)/status").status == 200)
            // Prometheus may scrape by any name.
            #expect(try Self.metricsGet(proxy, "/metrics", host: "metrics.internal").status == 200)
        }
    }

    @Test func theTLSListenerServesItToAdministratorsOnly() throws {
        try Self.withTraffic { proxy in
            let anonymous = try proxy.fetch(Req.get("/status"))
            #expect(anonymous.status == 401)
            #expect(anonymous.head.header("WWW-Authenticate") != nil)
            let bob = try proxy.fetch(Req.get("/status", Self.bob))
            #expect(bob.status == 403)
            #expect(bob.text.contains("reserved for administrators"), "\(bob.text)")
            #expect(bob.head.header("Content-Type")?.hasPrefix("application/json") == true)
            #expect(try proxy.fetch(Req.get("/status", Credential.basic("alice", "wrong"))).status == 401)
            let alice = try proxy.fetch(Req.get("/status", Self.alice))
            Self.expectPageHeaders(alice)
            #expect(alice.text.contains("<h1>Tollgate status</h1>"))
            #expect(alice.text.contains("</span>bob <span class=\"muted\">"))
            // Only GET and HEAD: another method is no route, as before.
            #expect(try proxy.fetch(Req.post("/status", "{}", Self.alice)).status == 404)
        }
    }

    /// CORS origins are for applications calling the API: none of them may read the page with an administrator's
    /// credentials. The page's answers carry no CORS header and its preflight is not answered.
    @Test func theStatusPageTakesNoPartInCORS() throws {
        let origin = "https://chat.example"
        try Self.withTraffic(configure: { $0.corsOrigins = [origin, "*"] }) { proxy in
            let cors = "Origin: \(origin)\r\n"
            let page = try proxy.fetch(Req.get("/status", cors + Self.alice))
            Self.expectPageHeaders(page)
            #expect(page.head.header("Access-Control-Allow-Origin") == nil)
            #expect(page.head.header("Access-Control-Allow-Credentials") == nil)
            let preflight = try proxy.fetch(Req.get("/status", cors + "Access-Control-Request-Method: GET\r\n"
                                                    + "Access-Control-Request-Headers: authorization\r\n",
                                                    method: "OPTIONS"))
            #expect(preflight.status == 401, "\(preflight.status) \(preflight.text)")
            #expect(preflight.head.header("Access-Control-Allow-Origin") == nil)
            #expect(preflight.head.header("Access-Control-Allow-Methods") == nil)
            // The API beside it still answers the origin.
            let tags = try proxy.fetch(Req.get("/api/tags", cors + Self.alice))
            #expect(tags.head.header("Access-Control-Allow-Origin") == origin)
        }
    }

    @Test func withAuthenticationOffOnlyTheMetricsListenerServesIt() throws {
        try withProxyAndFake(configure: { config in
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, _ in
            // No users to tell administrators apart: no status page on the public listener, only no route.
            let tls = try proxy.fetch(Req.get("/status"))
            #expect(tls.status == 404, "\(tls.text)")
            let page = try Self.metricsGet(proxy)
            Self.expectPageHeaders(page)
            #expect(page.text.contains("The usage ledger is off"))
        }
    }

    /// Ollama stopped: the page says so from its own readiness check, as a scrape does.
    @Test func thePageSaysWhenOllamaIsDown() throws {
        try withProxyAndFake(configure: { config in
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, fake in
            fake.stop()
            let page = try Self.metricsGet(proxy)
            #expect(page.status == 200)
            #expect(page.text.contains("<div class=\"tile bad\"><div class=\"label\">Ollama</div><div class=\"value\">down</div>"))
        }
    }

    @Test(.enabled(if: Chromium.path != nil, "Chromium is not installed (Debian's chromium package; .ci/run installs it)"))
    func aRealBrowserLoadsThePageWithoutErrors() throws {
        try Self.withTraffic { proxy in
            let port = try #require(proxy.server.metricsAddresses.first?.port)
            let url = "http://127.0.0.1:\(port)/status"
            let profile = try OpsTempDirectory()
            let dom = try Chromium.run(["--dump-dom", url], profile: profile.path + "/dom")
            #expect(dom.status == 0, "chromium --dump-dom: \(dom.stderr)")
            #expect(dom.stdout.contains("<h1>Tollgate status</h1>"), "\(dom.stdout.prefix(2000))")
            #expect(dom.stdout.contains("<svg"), "the charts are in the DOM")
            #expect(dom.stdout.contains("&lt;i&gt;eve&lt;/i&gt;"), "the markup user name stays text in the DOM")
            #expect(!dom.stdout.contains("<i>eve</i>"))
            Chromium.expectNoConsoleErrors(dom.stderr)
            let screenshot = Self.root.appendingPathComponent(".build/status-page.png").path
            try? FileManager.default.removeItem(atPath: screenshot)
            let shot = try Chromium.run(["--screenshot=\(screenshot)", "--window-size=1000,2200", url],
                                        profile: profile.path + "/shot")
            #expect(shot.status == 0, "chromium --screenshot: \(shot.stderr)")
            Chromium.expectNoConsoleErrors(shot.stderr)
            let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
            #expect(png.count > 10_000 && png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
                    "a PNG screenshot at \(screenshot)")
        }
    }
}

/// Debian's headless Chromium, when installed.
enum Chromium {
    /// Its path on `PATH` (`chromium`, or `chromium-browser` elsewhere), or nil.
    static let path: String? = {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser"] {
            if let found = dirs.map({ "\($0)/\(name)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
                return found
            }
        }
        return nil
    }()

    /// Runs headless Chromium with `arguments` and a profile of its own in `profile`, its console logged to
    /// stderr; waits for it to exit (it exits once the page has loaded and the DOM or screenshot is written).
    static func run(_ arguments: [String], profile: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(path))
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0",
                             "--user-data-dir=\(profile)"] + arguments
        let out = Pipe()
        // The console log goes to a file, so that only one pipe is read while Chromium runs.
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        let logPath = profile + "/console.log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try #require(FileHandle(forWritingAtPath: logPath))
        defer { try? log.close() }
        process.standardOutput = out
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), stderr)
    }

    /// Fails the test for a console message that is an uncaught error or a Content-Security-Policy violation.
    static func expectNoConsoleErrors(_ log: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bad = log.split(separator: "\n").filter { line in
            line.contains("Uncaught") || line.contains("Content Security Policy") || line.contains("Refused to")
                || (line.contains(":CONSOLE") && line.contains("rror"))
        }
        #expect(bad.isEmpty, "browser console: \(bad.joined(separator: "\n"))", sourceLocation: sourceLocation)
    }
}
