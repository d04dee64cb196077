import Testing
import TollgateTestSupport
@testable import Tollgate

/// What a reload applies and what it names as needing a restart, decided by the table for every setting.
@Suite struct ConfigReloadTests {
    private func build(_ flags: [String: [String]]) throws -> ServerConfig {
        try ServerConfig(resolved: ConfigResolver.resolve(flags: flags, environment: [:], file: nil), cores: 1)
    }

    @Test func everyReloadableSettingIsAppliedAndEveryRestartOnlyOneIsKeptAndNamed() throws {
        let old = try build(SettingSamples.base)
        for d in SettingDefinition.all {
            let sample = try #require(SettingSamples.changed(d), "no sample value for \(d.name)")
            var flags = SettingSamples.base
            flags[d.name] = sample
            let new = try build(flags)
            let (merged, needRestart) = old.reloaded(to: new)
            switch d.reload {
            case .reloadable:
                #expect(needRestart.isEmpty, "\(d.name): \(needRestart)")
                #expect(!d.differs(merged, new), "a reload did not apply \(d.name)")
            case .restart:
                #expect(needRestart == [d.name], "\(d.name): \(needRestart)")
                #expect(!d.differs(merged, old), "a reload applied the restart-only \(d.name)")
            }
        }
    }

    @Test func anUnchangedConfigNeedsNoRestart() throws {
        let config = try build(SettingSamples.base)
        #expect(config.reloaded(to: config).needRestart.isEmpty)
        #expect(ServerConfig().reloaded(to: ServerConfig()).needRestart.isEmpty)
    }

    @Test func changesAreNamedInTableOrderAndTheRestIsApplied() throws {
        let old = ServerConfig()
        var new = old
        new.workers += 1
        new.listen = []
        new.realm = "elsewhere"
        new.rateLimit = nil
        let (merged, needRestart) = old.reloaded(to: new)
        #expect(needRestart == ["listen", "rate", "workers"])
        #expect(merged.realm == "elsewhere")
        #expect(merged.workers == old.workers && merged.listen == old.listen && merged.rateLimit == old.rateLimit)
    }

    @Test func theLoadedUsersStay() throws {
        var old = ServerConfig()
        old.users = UsersFile.parse("alice:{PLAIN}a\n", path: "u")
        var new = old
        new.users = UsersFile.parse("bob:{PLAIN}b\n", path: "u")
        #expect(old.reloaded(to: new).config.users?.entries["alice"] != nil)
    }
}
