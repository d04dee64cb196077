import Foundation
import Testing
import Tollgate
import TollgateTestSupport

/// The `serve` flags are the settings table's: swift-argument-parser builds options only from declared properties,
/// so each setting's flag is declared in the executable, and these tests fail naming any setting whose flag is
/// missing, explained or shaped (repeatable list, bare boolean) other than its row says, or does not reach the
/// resolver under its name.
@Suite(.enabled(if: CLI.tollgate != nil, "no tollgate binary at \(CLI.expectedPath): run `swift build` first"))
struct CLISettingFlagsTests {
    @Test func everySettingIsAServeFlagWithItsRowsHelpAndShape() throws {
        let dump = CLI.run(["serve", "--experimental-dump-help"])
        #expect(dump.status == 0, "\(dump)")
        let json = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any]
        let command = try #require(json?["command"] as? [String: Any], "\(dump)")
        var options: [String: [String: Any]] = [:]
        for argument in command["arguments"] as? [[String: Any]] ?? [] {
            for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                options[name["name"] as? String ?? ""] = argument
            }
        }
        for d in SettingDefinition.all {
            guard let option = options.removeValue(forKey: d.name) else {
                Issue.record("serve has no \(d.flag)")
                continue
            }
            #expect(option["abstract"] as? String == d.flagHelp,
                    "\(d.flag): help \((option["abstract"] as? String ?? "none").debugDescription), its row says \(d.flagHelp.debugDescription)")
            let kind = d.kind == .bool ? "flag" : "option"
            #expect(option["kind"] as? String == kind, "\(d.flag) is not an \(kind)")
            #expect(option["isRepeating"] as? Bool == d.kind.isList,
                    "\(d.flag) is \(d.kind.isList ? "not " : "")repeatable, its row is \(d.kind.summary)")
        }
        #expect(Set(options.keys) == ["config", "help", "version"], "serve flags that are not settings: \(options.keys.sorted())")
    }

    @Test func everyServeFlagReachesTheResolver() throws {
        // One check-config run with every setting given by its flag: each is shown as coming from that flag.
        let dir = try OpsTempDirectory()
        let users = dir.file("users.htpasswd")
        try "alice:{PLAIN}x\n".write(toFile: users, atomically: true, encoding: .utf8)
        let keys = dir.file("authorized_keys")
        try "# no keys yet\n".write(toFile: keys, atomically: true, encoding: .utf8)
        let real = ["cert": [TestCertificates.shared.certificatePath], "key": [TestCertificates.shared.keyPath],
                    "users": [users], "authorized-keys": [keys]]
        var arguments = ["check-config"]
        for d in SettingDefinition.all {
            let values = try #require(real[d.name] ?? SettingSamples.changed(d), "no sample value for \(d.name)")
            if values.isEmpty { arguments.append(d.flag) }
            for value in values { arguments += [d.flag, value] }
        }
        let run = CLI.run(arguments)
        guard run.status == 0 else {
            Issue.record("check-config refused every setting given by its flag: \(run.stderr)")
            return
        }
        let lines = run.stdout.split(separator: "\n")
        for d in SettingDefinition.all {
            #expect(lines.contains { $0.hasPrefix("\(d.name) = ") && $0.hasSuffix("# from \(d.flag)") },
                    "\(d.flag) did not reach the resolver: \(run.stdout)")
        }
    }

    @Test func versionNamesTollgateAndOpenSSL() {
        let run = CLI.run(["--version"])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout == BuildInfo.line + "\n", "\(run)")
        #expect(run.stdout.hasPrefix("tollgate \(BuildInfo.version) (Swift ") && run.stdout.contains("OpenSSL 3"))
    }

    @Test func theNewFlagsAreTakenByTheResolver() throws {
        // Set, then resolved and shown by check-config: nothing is dropped on the way.
        let dir = try OpsTempDirectory()
        let users = dir.file("users.htpasswd")
        try "alice:{PLAIN}x\n".write(toFile: users, atomically: true, encoding: .utf8)
        let run = CLI.run(["check-config", "--listen-plain", "127.0.0.1:1", "--users", users, "--metrics-listen", "off",
                           "--max-connections", "77", "--max-connections-per-client", "5",
                           "--queue-per-user", "3", "--cloud-models", "admins", "--body-total-timeout", "9",
                           "--max-body-buffered", "1048576"])
        #expect(run.status == 0, "\(run)")
        let text = run.stdout + run.stderr
        for expected in ["max-connections = 77", "max-connections-per-client = 5", "queue-per-user = 3",
                         "cloud-models = admins", "body-total-timeout = 9", "max-body-buffered = 1048576"] {
            #expect(text.contains(expected), "check-config did not show \(expected): \(text)")
        }
    }
}
