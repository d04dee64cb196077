import FakeOllama
import Glibc
import Testing
import Tollgate
import TollgateIO

/// The Prometheus listener: plain HTTP on its own port, counters that match the traffic sent, token counts equal to
/// what Ollama reported, the open-connections gauge, and no HSTS.
@Suite struct OpsMetricsTests {
    static let alice = Credential.basic("alice", "pw-a")

    static func withMetrics(body: (Proxy, FakeOllamaServer) throws -> Void) throws {
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        }, body: body)
    }

    @Test func countersMoveWithTheTrafficSent() throws {
        try Self.withMetrics { proxy, fake in
            let before = try MetricsScrape(proxy)
            #expect(before.response.status == 200)
            #expect(before.response.head.header("Content-Type")?.hasPrefix("text/plain") == true)
            #expect(before.response.text.contains("# TYPE tollgate_requests_total counter"))
            #expect(before["tollgate_requests_total{family=\"ollama\",status=\"2xx\"}"] == 0)

            #expect(try proxy.fetch(Req.get("/api/version", Self.alice)).status == 200)
            #expect(try proxy.fetch(Req.get("/api/version")).status == 401)
            let generate = try proxy.fetch(Req.generate(Self.alice))
            #expect(generate.status == 200)
            let counts = try #require(finalOllamaCounts(generate), "\(generate.text)")
            let chat = try proxy.fetch(Req.post("/v1/chat/completions",
                                                #"{"model":"mistral:7b","messages":[{"role":"user","content":"hello there"}]}"#, Self.alice))
            #expect(chat.status == 200)
            let chatUsage = try #require(jsonObject(chat)?["usage"] as? [String: Any], "\(chat.text)")

            let after = try MetricsScrape(proxy)
            #expect(after["tollgate_requests_total{family=\"ollama\",status=\"2xx\"}"] == 2)
            #expect(after["tollgate_requests_total{family=\"ollama\",status=\"4xx\"}"] == 1)
            #expect(after["tollgate_requests_total{family=\"openai\",status=\"2xx\"}"] == 1)
            #expect(after["tollgate_requests_total{family=\"ollama\",status=\"5xx\"}"] == 0)
            #expect(after["tollgate_auth_total{outcome=\"allowed\"}"] == 3)
            let refusals = after.samples.filter { $0.key.hasPrefix("tollgate_auth_total{") && !$0.key.contains("allowed") }
            #expect(refusals.values.reduce(0, +) == 1, "\(refusals)")
            #expect(after["tollgate_tokens_total{user=\"alice\",model=\"mistral:7b\",kind=\"prompt\"}"]
                    == Double(counts.prompt + (chatUsage["prompt_tokens"] as? Int ?? -1)))
            #expect(after["tollgate_tokens_total{user=\"alice\",model=\"mistral:7b\",kind=\"completion\"}"]
                    == Double(counts.completion + (chatUsage["completion_tokens"] as? Int ?? -1)))
            // Three requests reached Ollama and waited for a first byte (the 401 did not); buckets are cumulative.
            #expect(after["tollgate_time_to_first_byte_seconds_count"] == 3)
            #expect(after["tollgate_time_to_first_byte_seconds_bucket{le=\"+Inf\"}"] == 3)
            let buckets = after.samples.filter { $0.key.hasPrefix("tollgate_time_to_first_byte_seconds_bucket") }
            #expect(buckets.values.allSatisfy { $0 <= 3 })
            #expect(after["tollgate_tls_handshakes_total{result=\"ok\"}"] == 4)
            // Scrapes count themselves nowhere.
            #expect(try MetricsScrape(proxy)["tollgate_requests_total{family=\"ollama\",status=\"2xx\"}"] == 2)
            #expect(fake.requests.count == 3)
        }
    }

    @Test func everyExposedSampleParses() throws {
        try Self.withMetrics { proxy, _ in
            _ = try proxy.fetch(Req.generate(Self.alice))
            let scrape = try MetricsScrape(proxy)
            for line in scrape.response.text.split(separator: "\n") {
                if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
                let space = line.lastIndex(of: " ")
                #expect(space.flatMap { Double(line[line.index(after: $0)...]) } != nil, "unparsable line: \(line)")
                #expect(line.hasPrefix("tollgate_") || line.hasPrefix("process_"), "\(line)")
            }
            #expect(scrape["tollgate_certificate_expiry_timestamp_seconds"] > 0)
            #expect(scrape.response.text.hasSuffix("\n"))
            let info = "tollgate_build_info{version=\"\(BuildInfo.version)\",swift=\"\(BuildInfo.swift)\",openssl=\"\(BuildInfo.openSSL)\"} 1"
            #expect(scrape.response.text.contains(info + "\n"), "no \(info)")
            #expect(BuildInfo.openSSL.hasPrefix("OpenSSL 3"))
        }
    }

    @Test func onlyIncreasingValuesAreCountersNamedTotal() throws {
        try Self.withMetrics { proxy, _ in
            _ = try proxy.fetch(Req.generate(Self.alice))
            let text = try MetricsScrape(proxy).response.text
            var types: [String: String] = [:]
            for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                #expect(parts.count == 4, "\(line)")
                #expect(types[String(parts[2])] == nil, "TYPE given twice: \(line)")
                types[String(parts[2])] = String(parts[3])
            }
            for (name, type) in types where type == "counter" { #expect(name.hasSuffix("_total"), "\(name)") }
            for name in ["tollgate_auth_hashes_computed_total", "tollgate_auth_cache_hits_total", "process_cpu_seconds_total"] {
                #expect(types[name] == "counter", "\(name): \(types[name] ?? "absent")")
            }
            for name in ["process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
                         "process_max_fds", "process_start_time_seconds"] {
                #expect(types[name] == "gauge", "\(name): \(types[name] ?? "absent")")
            }
        }
    }

    @Test func processMetricsDescribeThisProcess() throws {
        try Self.withMetrics { proxy, _ in
            let scrape = try MetricsScrape(proxy)
            #expect(scrape["process_resident_memory_bytes"] > 1_048_576)
            #expect(scrape["process_virtual_memory_bytes"] >= scrape["process_resident_memory_bytes"])
            #expect(scrape["process_open_fds"] >= 3)
            #expect(scrape["process_max_fds"] >= scrape["process_open_fds"])
            let now = Double(time(nil))
            #expect(scrape["process_start_time_seconds"] > now - 86_400 * 365 && scrape["process_start_time_seconds"] <= now + 1)
            #expect(scrape["process_cpu_seconds_total"] > 0)
        }
    }

    @Test func aScrapeWritesNoAccessLogLine() throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        try withProxyAndFake(configure: { config in
            config.users = users
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
            config.accessLog = .json
            config.accessLogPath = log
            config.workers = 1
        }, body: { (proxy: Proxy, _: FakeOllamaServer) throws in
            let scrape = try MetricsScrape(proxy)
            #expect(scrape.response.text.contains("# TYPE tollgate_access_log_dropped_lines_total counter\n"))
            #expect(try MetricsScrape(proxy).response.status == 200)
            #expect(try proxy.fetch(Req.get("/api/version", Self.alice)).status == 200)
            let lines = OpsFiles.waitForLines(log, count: 1)
            #expect(lines.count == 1, "\(lines)")
            #expect(lines.allSatisfy { !$0.contains("/metrics") }, "\(lines)")
        })
    }

    @Test func openConnectionsFollowClients() throws {
        try Self.withMetrics { proxy, _ in
            // The scrape's own connection is open while it is answered.
            let baseline = try MetricsScrape(proxy)["tollgate_open_connections"]
            #expect(baseline == 1)
            let a = try proxy.tls()
            let b = try proxy.plain()
            #expect(try a.exchange(Req.get("/healthz")).status == 200)
            #expect(try b.exchange(Req.get("/healthz")).status == 200)
            #expect(try MetricsScrape(proxy)["tollgate_open_connections"] == 3)
            a.close()
            b.close()
            let back = try waitUntil { try MetricsScrape(proxy)["tollgate_open_connections"] == 1 }
            #expect(back, "open connections did not return to the scrape's own")
        }
    }

    @Test func theMetricsListenerIsPlainHTTPWithoutHSTSAndServesOnlyMetrics() throws {
        try Self.withMetrics { proxy, fake in
            let scrape = try MetricsScrape(proxy)
            #expect(scrape.response.head.header("Strict-Transport-Security") == nil)
            let port = try #require(proxy.server.metricsAddresses.first?.port)
            #expect(port != proxy.tlsPort && port != proxy.plainPort)
            let client = HTTPClient(try PlainStream(port: port))
            defer { client.close() }
            // Proxy routes are not served here, with or without credentials.
            let other = try client.exchange(Req.get("/api/version", Self.alice))
            #expect(other.status == 404)
            #expect(other.head.header("Strict-Transport-Security") == nil)
            #expect(fake.requests.isEmpty)
            // The public listeners do not serve /metrics.
            let onTLS = try proxy.fetch(Req.get("/metrics", Self.alice))
            #expect(onTLS.status == 404)
            #expect(!onTLS.text.contains("tollgate_requests_total"))
        }
    }
}
