import Foundation
import Testing
import TollgateIO
@testable import Tollgate

/// `ServerConfig.load`, what `serve`, a reload and `check-config` all read the configuration with: every problem at
/// once (the file's syntax and its values together, each at its line), and nothing said twice.
@Suite struct ConfigLoadTests {
    private func load(_ text: String, flags: [String: [String]] = [:], environment: [String: String] = [:])
        throws -> (problems: [String], config: ServerConfig, path: String) {
        let path = NSTemporaryDirectory() + "tollgate-load-\(getpid())-\(UUID().uuidString).conf"
        #expect(writeFile(path, text))
        defer { unlink(path) }
        let loaded = ServerConfig.load(flags: flags, environment: environment, configPath: path, cores: 1)
        return (loaded.problems.map(\.description), loaded.config, path)
    }

    @Test func syntaxAndValueProblemsComeTogetherInLineOrder() throws {
        let (problems, _, path) = try load("""
            upstream = ftp://ollama:11434
            burst = lots
            this is not a setting line
            listen = nowhere
            health-path = healthz
            """)
        #expect(problems == [
            "\(path):1: key \"upstream\": \"ftp://ollama:11434\" is not http://HOST:PORT",
            "\(path):2: key \"burst\": expected an integer, got \"lots\"",
            "\(path):3: expected \"key = value\", got \"this is not a setting line\"",
            "\(path):4: key \"listen\": \"nowhere\" is not HOST:PORT or [IPV6]:PORT with a numeric address",
            "\(path):5: key \"health-path\": \"healthz\" must start with / (or be off)",
        ])
    }

    @Test func flagsAndVariablesAreReportedWithTheFile() throws {
        let (problems, _, path) = try load("listen = nowhere\n", flags: ["rate": ["fast"]],
                                           environment: ["TOLLGATE_BURST": "-1"])
        #expect(problems == [
            "\(path):1: key \"listen\": \"nowhere\" is not HOST:PORT or [IPV6]:PORT with a numeric address",
            "--rate: expected a number, got \"fast\"",
            "TOLLGATE_BURST: -1 is out of range (0...1000000)",
        ])
    }

    @Test func aRefusedSettingIsNotBlamedAgainByTheRulesThatUseIt() throws {
        // "nothing to listen on" follows from the refused value: not said as well.
        let (problems, _, path) = try load("listen = nowhere\n")
        #expect(problems.count == 1 && problems[0].hasPrefix("\(path):1:"), "\(problems)")
        let (clean, config, _) = try load("listen-plain = 127.0.0.1:0\n")
        #expect(clean.isEmpty)
        #expect(config.listenPlain.map(\.description) == ["127.0.0.1:0"])
    }

    @Test func aMissingNamedFileIsOneProblem() {
        let loaded = ServerConfig.load(flags: [:], environment: [:], configPath: "/nonexistent/tollgate.conf", cores: 1)
        let lines = loaded.problems.map(\.description)
        #expect(lines.count == 1 && lines[0].hasPrefix("/nonexistent/tollgate.conf: "), "\(lines)")
    }
}
