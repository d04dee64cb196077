import Testing
@testable import Tollgate

/// `upstream` as a list of `URL[ max=N]` backends, validated when the `ServerConfig` is built.
@Suite struct ConfigUpstreamsTests {
    private func build(flags: [String: [String]] = [:], file: String? = nil) throws(ConfigError) -> ServerConfig {
        var flags = flags
        flags["listen-plain"] = ["127.0.0.1:0"]
        let parsed = try file.map { text throws(ConfigError) in try ConfigFile.parse(text: text, path: "t.conf") }
        let resolved = try ConfigResolver.resolve(flags: flags, environment: [:], file: parsed)
        return try ServerConfig(resolved: resolved, cores: 1)
    }

    private func problems(flags: [String: [String]] = [:], file: String? = nil) -> [String] {
        do {
            _ = try build(flags: flags, file: file)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func oneUpstreamByDefaultWithNoLimitAndNoBackendSet() throws {
        let c = try build()
        #expect(c.upstreams.map(\.address.hostHeader) == ["127.0.0.1:11434"])
        #expect(c.backendLimit(0) == nil)
        #expect(!c.usesBackendSet)
        #expect(c.healthInterval == 2)
        #expect(c.healthFails == 3)
    }

    @Test func repeatedFlagsGiveSeveralBackendsWithDefaultMaxOne() throws {
        let c = try build(flags: ["upstream": ["http://10.0.0.5:11434 max=2", "http://10.0.0.6:11434"],
                                  "health-interval": ["0.5"], "health-fails": ["2"]])
        #expect(c.upstreams.map(\.address.hostHeader) == ["10.0.0.5:11434", "10.0.0.6:11434"])
        #expect(c.upstream.hostHeader == "10.0.0.5:11434")
        #expect(c.backendLimit(0) == 2)
        #expect(c.backendLimit(1) == 1)
        #expect(c.usesBackendSet)
        #expect(c.healthInterval == 0.5)
        #expect(c.healthFails == 2)
    }

    @Test func theBackendQueueFollowsQueueAndQueueTimeoutEvenWithConcurrencyLimitsOff() throws {
        let c = try build(flags: ["max-inflight-per-user": ["0"], "queue": ["3"], "queue-timeout": ["1.5"]])
        #expect(c.concurrency == nil)
        #expect(c.backendQueueLimit == 3)
        #expect(c.backendQueueTimeoutMillis == 1_500)
    }

    @Test func aSingleUpstreamWithMaxUsesTheBackendSet() throws {
        let c = try build(flags: ["upstream": ["http://127.0.0.1:11434  max=3"]])
        #expect(c.backendLimit(0) == 3)
        #expect(c.usesBackendSet)
    }

    @Test func theConfigFileListsBackendsOnRepeatedLinesOrWithCommas() throws {
        let c = try build(file: """
            upstream = http://127.0.0.1:11434 max=2
            upstream = http://127.0.0.1:11435, http://127.0.0.1:11436 max=4
            """)
        #expect(c.upstreams.map(\.address.address.port) == [11434, 11435, 11436])
        #expect(c.upstreams.map(\.maxInFlight) == [2, nil, 4])
    }

    @Test func badBackendsAreClearErrorsWithTheirPlace() {
        #expect(problems(file: "upstream = http://127.0.0.1:1 max=0\nupstream = https://x:1\n") == [
            #"t.conf:1: key "upstream": max=0 for http://127.0.0.1:1 is not an integer in 1...100000"#,
            #"t.conf:2: key "upstream": "https://x:1" is not http://HOST:PORT"#,
        ])
        #expect(problems(flags: ["upstream": ["http://127.0.0.1:1 weight=2"]]) == [
            #"--upstream: unknown option "weight=2" after http://127.0.0.1:1 (only max=N)"#,
        ])
        #expect(problems(flags: ["upstream": ["http://127.0.0.1:1 max=2 max=3"]]) == [
            "--upstream: max= given twice for http://127.0.0.1:1",
        ])
        #expect(problems(flags: ["upstream": ["http://127.0.0.1:1", "http://127.0.0.1:1/"]]) == [
            "--upstream: 127.0.0.1:1 is listed twice",
        ])
        #expect(problems(flags: ["health-fails": ["0"]]) == ["--health-fails: 0 is out of range (1...1000)"])
    }

    @Test func backendSpecParsesMaxAndRejectsJunk() {
        #expect((try? BackendSpec.parse("http://127.0.0.1:8080 max=7").get())?.maxInFlight == 7)
        #expect((try? BackendSpec.parse("http://localhost:8080").get())?.maxInFlight == nil)
        #expect((try? BackendSpec.parse("http://127.0.0.1:8080 max=-1").get()) == nil)
        #expect((try? BackendSpec.parse("http://127.0.0.1:8080 max=").get()) == nil)
        #expect((try? BackendSpec.parse("ftp://127.0.0.1:8080").get()) == nil)
    }
}
