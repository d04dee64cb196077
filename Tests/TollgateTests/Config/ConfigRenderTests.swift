import Testing
@testable import Tollgate

@Suite struct ConfigRenderTests {
    @Test func rendersEveryValueWithItsSource() throws {
        let file = try parseConfig("""
            cert = /etc/letsencrypt/live/example.com/fullchain.pem
            realm = "Team #1"
            listen = 0.0.0.0:443
            listen = [::]:443
            cors-origin = "https://a.example, b"
            """, path: "/etc/tollgate/tollgate.conf")
        let c = try ConfigResolver.resolve(flags: ["burst": ["50"]],
                                           environment: ["TOLLGATE_RATE": "2.5", "TOLLGATE_TRUSTED_PROXY": ""],
                                           file: file)
        let lines = c.render().split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true)
            .joined(separator: " ") }
        #expect(lines.first == "# Effective Tollgate settings: flag > TOLLGATE_* environment > "
                + "config file /etc/tollgate/tollgate.conf > default")
        #expect(lines.contains("listen = 0.0.0.0:443, [::]:443 # from /etc/tollgate/tollgate.conf:3"))
        #expect(lines.contains("# listen-plain is not set"))
        #expect(lines.contains("cert = /etc/letsencrypt/live/example.com/fullchain.pem # from /etc/tollgate/tollgate.conf:1"))
        #expect(lines.contains("realm = \"Team #1\" # from /etc/tollgate/tollgate.conf:2"))
        #expect(lines.contains("cors-origin = \"https://a.example, b\" # from /etc/tollgate/tollgate.conf:5"))
        #expect(lines.contains("burst = 50 # from --burst"))
        #expect(lines.contains("rate = 2.5 # from TOLLGATE_RATE"))
        #expect(lines.contains("# trusted-proxy is empty # from TOLLGATE_TRUSTED_PROXY"))
        #expect(lines.contains("upstream = http://127.0.0.1:11434 # from default"))
        #expect(lines.contains("rate-limit-dry-run = false # from default"))
        #expect(lines.contains("head-timeout = 10 # from default"))
        #expect(lines.contains("max-body = 1048576 # from default"))
        #expect(lines.contains("# workers is not set"))
        #expect(lines.count == SettingDefinition.all.count + 1)
    }

    @Test func theRenderedTextParsesBackToTheSameValues() throws {
        let file = try parseConfig(#"""
            realm = "  odd \"realm\" # \\ "
            listen = 0.0.0.0:443, "[::]:443"
            cors-origin = "x, y", z
            queue-timeout = 0.25
            rate-limit-dry-run = on
            """#)
        let c = try ConfigResolver.resolve(flags: ["workers": ["3"]], environment: [:], file: file)
        let reparsed = try ConfigFile.parse(text: c.render(), path: "rendered.conf")
        for d in SettingDefinition.all {
            switch c.values[d.name] {
            case nil, .list([])?:
                #expect(reparsed.entries[d.name] == nil, "\(d.name)")
            case let value?:
                #expect(reparsed.entries[d.name]?.value == value, "\(d.name)")
            }
        }
    }
}
