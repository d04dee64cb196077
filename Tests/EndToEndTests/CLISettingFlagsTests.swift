import Testing
import Tollgate

/// Every setting in the table can be given as a `serve` flag: the flags are declared one by one in the executable,
/// so this catches a setting added to the table but not to the command line.
@Suite(.enabled(if: CLI.tollgate != nil, "no tollgate binary at \(CLI.expectedPath): run `swift build` first"))
struct CLISettingFlagsTests {
    @Test func everySettingIsAServeFlag() {
        let help = CLI.run(["serve", "--help"])
        #expect(help.status == 0, "\(help)")
        let text = help.stdout + help.stderr
        for definition in SettingDefinition.all {
            #expect(text.contains("--\(definition.name) "), "serve has no --\(definition.name)")
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
