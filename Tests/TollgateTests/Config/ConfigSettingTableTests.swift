import Testing
import TollgateIO
import TollgateTestSupport
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

    @Test func everyRowNamesItsFlagAndVariable() {
        for d in SettingDefinition.all {
            #expect(d.flag == "--" + d.name)
            #expect(d.environmentName.hasPrefix("TOLLGATE_"), "\(d.name)")
            #expect(d.flagHelp.hasPrefix(d.help), "\(d.name)")
        }
        #expect(SettingDefinition.named("workers")?.reload == .restart)
        #expect(SettingDefinition.named("realm")?.reloadable == true)
    }

    @Test func serverConfigIsWhatServeRunsWithGivenNothing() throws {
        let shipped = ServerConfig()
        let served = try ServerConfig(resolved: ConfigResolver.resolve(flags: [:], environment: [:], file: nil))
        for d in SettingDefinition.all {
            #expect(!d.differs(shipped, served), "ServerConfig() and serve disagree on \(d.name)")
        }
        // Spot checks of the values the table's defaults become.
        #expect(shipped.listen == [SocketAddress(parsing: "0.0.0.0:8443")!])
        #expect(shipped.workers == ServerConfig.onlineCores())
        #expect(shipped.authSettings.workers == ServerConfig.onlineCores())
        #expect(shipped.rateLimit == shipped.rateLimitSettings)
        #expect(shipped.rateLimit?.ratePerSecond == 10)
        #expect(shipped.rateLimit?.burst == 20)
        #expect(shipped.concurrency?.perUser == 2)
        #expect(shipped.concurrency?.queueTimeoutMillis == 30_000)
        #expect(shipped.backendQueueLimit == 16)
        #expect(shipped.userRate == nil)
        #expect(shipped.sharedLimits == nil)
        #expect(shipped.metricsListen == [SocketAddress(parsing: "127.0.0.1:9091")!])
        #expect(shipped.metricsListenOptional)
        #expect(shipped.timeouts.requestHead == 10)
        #expect(shipped.bodyLimits.inference == 64 << 20)
        #expect(shipped.proxyProtocolFrom.count == 6)
        #expect(shipped.hsts == "max-age=63072000")
        #expect(shipped.realm == "Tollgate")
        #expect(shipped.accessLog == .json)
        #expect(shipped.pidFile == nil)
    }

    @Test func everyRowFillsAFieldOfItsOwn() throws {
        let base = try ServerConfig(resolved: ConfigResolver.resolve(flags: SettingSamples.base, environment: [:],
                                                                     file: nil), cores: 1)
        for d in SettingDefinition.all {
            guard let sample = SettingSamples.changed(d) else {
                Issue.record("no sample value for \(d.name): add one to SettingSamples.texts")
                continue
            }
            var flags = SettingSamples.base
            flags[d.name] = sample
            let changed = try ServerConfig(resolved: ConfigResolver.resolve(flags: flags, environment: [:], file: nil),
                                           cores: 1)
            let differing = SettingDefinition.all.filter { $0.differs(base, changed) }.map(\.name)
            #expect(differing == [d.name], "--\(d.name) \(sample) changed \(differing)")
        }
    }
}

