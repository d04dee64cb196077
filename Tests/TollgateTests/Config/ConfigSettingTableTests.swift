import Testing
@testable import Tollgate

@Suite struct ConfigSettingTableTests {
    @Test func namesAreUniqueFlagShapedAndDefaultsParse() {
        var seen: Set<String> = []
        for d in SettingDefinition.all {
            #expect(seen.insert(d.name).inserted, "\(d.name) twice")
            #expect(d.name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" } && !d.name.hasPrefix("-"))
            #expect(!d.help.isEmpty)
            if d.defaultText != nil { #expect(d.defaultValue != nil, "\(d.name)") }
        }
        #expect(Set(SettingDefinition.all.map(\.environmentName)).count == SettingDefinition.all.count)
    }

    @Test func environmentNames() {
        #expect(SettingDefinition.named("head-timeout")?.environmentName == "TOLLGATE_HEAD_TIMEOUT")
        #expect(SettingDefinition.named("listen")?.environmentName == "TOLLGATE_LISTEN")
        #expect(SettingDefinition.named("upstream-connect-timeout")?.environmentName
                == "TOLLGATE_UPSTREAM_CONNECT_TIMEOUT")
    }

    @Test func todaysServeDefaults() throws {
        let c = try ConfigResolver.resolve(flags: [:], environment: [:], file: nil)
        #expect(c.list("listen") == ["0.0.0.0:8443"])
        #expect(c.list("listen-plain") == [])
        #expect(c.string("cert") == nil)
        #expect(c.list("upstream") == ["http://127.0.0.1:11434"])
        #expect(c.string("realm") == "Tollgate")
        #expect(c.double("rate") == 10)
        #expect(c.int("burst") == 20)
        #expect(c.int("rate-limit-keys") == 100_000)
        #expect(c.bool("rate-limit-dry-run") == false)
        #expect(c.int("workers") == nil)
        #expect(c.string("log") == "json")
        #expect(c.double("head-timeout") == 10)
        #expect(c.double("keepalive-timeout") == 75)
        #expect(c.double("body-timeout") == 60)
        #expect(c.double("send-timeout") == 60)
        #expect(c.double("upstream-connect-timeout") == 5)
        #expect(c.double("upstream-timeout") == 600)
        #expect(c.double("drain-timeout") == 30)
        #expect(c.int("max-body-inference") == 64 << 20)
        #expect(c.int("max-body") == 1 << 20)
    }
}
