import Testing
import TollgateIO
@testable import Tollgate

/// `login-fail-limit`, `login-fail-window` and `proxy-protocol-from`: flag, variable and file key, defaults, ranges,
/// and how check-config shows them.
@Suite struct ConfigLoginAndProxyProtocolTests {
    private func build(flags: [String: [String]] = [:], environment: [String: String] = [:],
                       file: String = "") throws -> ServerConfig {
        let parsed = try parseConfig("listen-plain = 127.0.0.1:8080\n" + file)
        return try ServerConfig(resolved: try ConfigResolver.resolve(flags: flags, environment: environment,
                                                                     file: parsed), cores: 1)
    }

    @Test func defaultsAreTheThrottleAndRangesOfBefore() throws {
        let c = try build()
        #expect(c.authSettings.failureLimit == 10)
        #expect(c.authSettings.failureWindowSeconds == 60)
        #expect(c.proxyProtocolFrom.map(\.description)
                == ["127.0.0.0/8", "0:0:0:0:0:0:0:1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00:0:0:0:0:0:0:0/7"])
        #expect(c.proxyProtocolFrom.contains { $0.contains(SocketAddress(parsing: "10.1.2.3:1")!.host) })
        #expect(!c.proxyProtocolFrom.contains { $0.contains(SocketAddress(parsing: "203.0.113.7:1")!.host) })
    }

    @Test func flagVariableAndFileKeyAllReachTheConfig() throws {
        #expect(try build(flags: ["login-fail-limit": ["3"]]).authSettings.failureLimit == 3)
        #expect(try build(environment: ["TOLLGATE_LOGIN_FAIL_WINDOW": "300"]).authSettings.failureWindowSeconds == 300)
        let fromFile = try build(file: "login-fail-limit = 0\nproxy-protocol-from = 203.0.113.0/24, 2001:db8::/32\n")
        #expect(fromFile.authSettings.failureLimit == 0)
        #expect(fromFile.proxyProtocolFrom.map(\.description) == ["203.0.113.0/24", "2001:db8:0:0:0:0:0:0/32"])
        let fromVariable = try build(environment: ["TOLLGATE_PROXY_PROTOCOL_FROM": "198.51.100.9"])
        #expect(fromVariable.proxyProtocolFrom.map(\.description) == ["198.51.100.9/32"])
    }

    @Test func badValuesAreRefusedNamingTheSetting() throws {
        #expect(!resolveErrors(flags: ["login-fail-limit": ["-1"]]).isEmpty)
        #expect(!resolveErrors(flags: ["login-fail-window": ["0"]]).isEmpty)
        #expect(!resolveErrors(flags: ["login-fail-window": ["soon"]]).isEmpty)
        do throws(ConfigError) {
            let parsed = try ConfigFile.parse(text: "listen-plain = 127.0.0.1:8080\nproxy-protocol-from = 10.0.0.0/33\n",
                                              path: "tollgate.conf")
            _ = try ServerConfig(resolved: try ConfigResolver.resolve(flags: [:], environment: [:], file: parsed),
                                 cores: 1)
            Issue.record("accepted a bad CIDR")
        } catch {
            #expect(error.description.contains("proxy-protocol-from"), "\(error.description)")
            #expect(error.description.contains("tollgate.conf:2"), "\(error.description)")
        }
    }

    @Test func checkConfigShowsThemWithTheirSource() throws {
        let file = try parseConfig("login-fail-window = 120\n")
        let c = try ConfigResolver.resolve(flags: ["login-fail-limit": ["5"]], environment: [:], file: file)
        let lines = c.render().split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines.contains("login-fail-limit = 5 # from --login-fail-limit"))
        #expect(lines.contains("login-fail-window = 120 # from tollgate.conf:1"))
        #expect(lines.contains("proxy-protocol-from = 127.0.0.0/8, ::1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                               + "fc00::/7 # from default"))
    }
}
