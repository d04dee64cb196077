import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// The Prometheus stack in deploy/: `promtool check metrics` accepts a real scrape of a Tollgate with every feature
/// that has metrics switched on (backends, quotas, the ledger, Redis-shared limits, in-flight limits), after
/// traffic; `promtool check rules` accepts the alert rules and every query of the Grafana dashboard; and every
/// `tollgate_*` name the rules and the dashboard use is one that scrape exposes.
///
/// The promtool checks are skipped, saying why, when promtool is not installed; .ci/run installs it (Debian's
/// `prometheus` package). The names check needs nothing but the files.
@Suite struct OpsPrometheusStackTests {
    static let alice = Credential.basic("alice", "pw-a")
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let alertsPath = root.appendingPathComponent("deploy/prometheus/alerts.yml").path
    static let dashboardPath = root.appendingPathComponent("deploy/grafana/tollgate.json").path

    /// Runs `body` with the text of a scrape taken after traffic from a proxy with every metric-bearing feature on.
    static func withFullScrape(_ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-promstack-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\nbob:{PLAIN}pw-b\n")
        let policies = try ServerConfig(resolved: ConfigResolver.resolve(
            flags: ["policy": ["* tokens-per-day=100000 max-predict=64", "bob requests-per-day=50 tokens-per-month=900000"]],
            environment: [:], file: nil), cores: 1).policies
        try withBackends([FakeBackend(), FakeBackend()]) { config in
            config.users = users
            config.policies = policies
            config.concurrency = ConcurrencyLimiter.Settings()
            config.databasePath = StateDatabase.path(in: dir.path + "/state")   // the state directory itself is created
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
            config.accessLog = .json
            config.accessLogPath = dir.path + "/access.log"
            // Nothing listens on port 1: the shared limits run on their fallback, and their series are exposed.
            var redis = RedisConfiguration(host: "127.0.0.1", port: 1)
            redis.initialBackoffMillis = 20
            redis.maxBackoffMillis = 100
            config.sharedLimits = SharedLimitsSettings(redis: redis)
            // ACME on, towards a CA that is not there: its failures counter is exposed.
            config.acmeDomains = ["tollgate.test"]
            config.acmeCA = "https://127.0.0.1:1/dir"
            config.acmeDirectory = ACMEStore.directory(inStateDirectory: dir.path + "/state")
        } body: { proxy, _ in
            #expect(try proxy.fetch(Req.generate(Self.alice)).status == 200)
            let chat = try proxy.fetch(Req.post("/v1/chat/completions",
                                                #"{"model":"mistral:7b","messages":[{"role":"user","content":"hi"}]}"#,
                                                Self.alice))
            #expect(chat.status == 200, "\(chat.text)")
            #expect(try proxy.fetch(Req.get("/api/version")).status == 401)
            #expect(try proxy.fetch(Req.get("/api/version", Credential.basic("alice", "wrong"))).status == 401)
            let scrape = try MetricsScrape(proxy)
            #expect(scrape.response.status == 200)
            try body(scrape.response.text)
        }
    }

    @Test func everyNameTheRulesAndTheDashboardUseIsExposed() throws {
        let used = try Self.namesUsed(in: Self.alertsPath).union(try Self.namesUsed(in: Self.dashboardPath))
        #expect(used.contains("tollgate_upstream_up") && used.contains("tollgate_quota_limit"), "\(used.sorted())")
        try Self.withFullScrape { text in
            let exposed = Self.namesExposed(text)
            let missing = used.subtracting(exposed)
            #expect(missing.isEmpty, "used in deploy/ but not exposed: \(missing.sorted())")
            #expect(text.contains("tollgate_upstream_up 1\n"), "the backends are up")
            #expect(text.contains(#"tollgate_quota_limit{user="alice",quota="tokens-day"} 100000"#))
            #expect(text.contains(#"tollgate_quota_limit{user="bob",quota="requests-day"} 50"#))
            #expect(text.contains(#"tollgate_quota_used{user="bob",quota="tokens-month"} 0"#))
        }
    }

    /// With Ollama stopped, the scrape itself finds out (a connect probe): the "Ollama down" alert needs no traffic.
    @Test func upstreamUpIsZeroWhileOllamaIsDown() throws {
        try withProxyAndFake(configure: { config in
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }) { proxy, fake in
            fake.stop()
            let scrape = try MetricsScrape(proxy)
            #expect(scrape.response.status == 200)
            #expect(scrape.response.text.contains("# TYPE tollgate_upstream_up gauge\ntollgate_upstream_up 0\n"),
                    "\(scrape.response.text)")
        }
    }

    @Test(.enabled(if: Promtool.path != nil, "promtool is not installed (Debian's prometheus package; .ci/run installs it)"))
    func promtoolAcceptsARealScrape() throws {
        try Self.withFullScrape { text in
            let result = try Promtool.run(["check", "metrics"], stdin: text)
            #expect(result.status == 0 && result.output.isEmpty, "promtool check metrics: \(result.output)")
        }
    }

    @Test(.enabled(if: Promtool.path != nil, "promtool is not installed (Debian's prometheus package; .ci/run installs it)"))
    func promtoolAcceptsTheAlertRules() throws {
        let result = try Promtool.run(["check", "rules", Self.alertsPath])
        #expect(result.status == 0, "promtool check rules: \(result.output)")
        #expect(result.output.contains("SUCCESS"), "\(result.output)")
    }

    /// Each dashboard query, its Grafana variables replaced, as a recording rule: promtool parses the PromQL.
    @Test(.enabled(if: Promtool.path != nil, "promtool is not installed (Debian's prometheus package; .ci/run installs it)"))
    func promtoolParsesEveryDashboardQuery() throws {
        let queries = try Self.dashboardQueries()
        #expect(queries.count >= 20)
        var yaml = "groups:\n  - name: dashboard\n    rules:\n"
        for (i, query) in queries.enumerated() {
            let expr = query.replacingOccurrences(of: "$__rate_interval", with: "5m")
                .replacingOccurrences(of: "$__range", with: "1h").replacingOccurrences(of: "$instance", with: ".*")
            let quoted = String(data: try JSONSerialization.data(withJSONObject: expr, options: [.fragmentsAllowed, .withoutEscapingSlashes]),
                                encoding: .utf8) ?? ""
            yaml += "      - record: dashboard:query\(i)\n        expr: \(quoted)\n"
        }
        let dir = try OpsTempDirectory()
        let file = dir.file("dashboard-rules.yml")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try Promtool.run(["check", "rules", file])
        #expect(result.status == 0, "promtool rejects a dashboard query: \(result.output)\n\(yaml)")
    }

    @Test func theDashboardImportsAsIs() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.dashboardPath))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(dashboard["title"] as? String == "Tollgate")
        let variables = (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        let datasource = variables.first { $0["name"] as? String == "datasource" }
        #expect(datasource?["type"] as? String == "datasource" && datasource?["query"] as? String == "prometheus")
        let panels = dashboard["panels"] as? [[String: Any]] ?? []
        for panel in panels where panel["type"] as? String != "row" {
            let uid = (panel["datasource"] as? [String: Any])?["uid"] as? String
            #expect(uid == "${datasource}", "panel \(panel["title"] ?? "?") does not use the datasource variable")
        }
        let text = String(decoding: data, as: UTF8.self)
        // A hard-wired data source (a uid from someone's Grafana) would break the import elsewhere.
        #expect(!text.contains("__inputs") || text.contains("DS_PROMETHEUS"))
    }

    /// The panels' PromQL queries.
    static func dashboardQueries() throws -> [String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dashboardPath))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = dashboard["panels"] as? [[String: Any]] ?? []
        return panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
    }

    /// Every `tollgate_[a-z_]+` in a file.
    static func namesUsed(in path: String) throws -> Set<String> {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let regex = try NSRegularExpression(pattern: "tollgate_[a-z_]+")
        let range = NSRange(text.startIndex..., in: text)
        return Set(regex.matches(in: text, range: range).compactMap { Range($0.range, in: text).map { String(text[$0]) } })
    }

    /// The family names (`# TYPE` lines) and sample names (histograms' `_bucket`, `_sum`, `_count`) of a scrape.
    static func namesExposed(_ text: String) -> Set<String> {
        var names: Set<String> = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                names.insert(String(line.split(separator: " ")[2]))
            } else if !line.hasPrefix("#"), let end = line.firstIndex(where: { $0 == "{" || $0 == " " }) {
                names.insert(String(line[..<end]))
            }
        }
        return names
    }
}

/// Prometheus's `promtool`, when installed.
enum Promtool {
    /// Its path on `PATH`, or nil.
    static let path: String? = {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return dirs.map { "\($0)/promtool" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Runs promtool with `arguments` and `stdin`; its exit status and its stdout and stderr together.
    static func run(_ arguments: [String], stdin: String = "") throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(path))
        process.arguments = arguments
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
