import Foundation
import Testing

/// The shared-limit flags of the built `tollgate` binary: accepted by check-config, shown with their origin and
/// the Redis password hidden, and refused with the flag named when out of range or malformed.
@Suite(.enabled(if: CLI.tollgate != nil, "build tollgate first (swift build)"))
struct SharedCLITests {
    @Test func checkConfigShowsTheSharedSettingsWithoutThePassword() throws {
        let dir = try OpsTempDirectory()
        let users = dir.file("users.htpasswd")
        try "alice:{PLAIN}x\n".write(toFile: users, atomically: true, encoding: .utf8)
        let result = CLI.run(["check-config", "--listen-plain", "127.0.0.1:1", "--users", users, "--metrics-listen", "off",
                              "--redis", "redis://app:hunter2@127.0.0.1:6390/3", "--fleet-size", "3",
                              "--redis-fallback", "open", "--redis-timeout", "0.5", "--slot-lease", "9"])
        #expect(result.status == 0, "\(result)")
        for line in ["redis = redis://app:***@127.0.0.1:6390/3", "fleet-size = 3", "redis-fallback = open",
                     "redis-timeout = 0.5", "slot-lease = 9"] {
            #expect(result.stdout.contains(line), "\(line) missing: \(result)")
        }
        #expect(!result.stdout.contains("hunter2") && !result.stderr.contains("hunter2"))
    }

    @Test func badValuesNameTheFlag() throws {
        let dir = try OpsTempDirectory()
        let users = dir.file("users.htpasswd")
        try "alice:{PLAIN}x\n".write(toFile: users, atomically: true, encoding: .utf8)
        let base = ["check-config", "--listen-plain", "127.0.0.1:1", "--users", users, "--metrics-listen", "off"]
        let fleet = CLI.run(base + ["--fleet-size", "0"])
        #expect(fleet.status != 0)
        #expect(fleet.stderr.contains("--fleet-size"), "\(fleet)")
        let url = CLI.run(base + ["--redis", "redis://:hunter2@host:0"])
        #expect(url.status != 0)
        #expect(url.stderr.contains("--redis"), "\(url)")
        #expect(!url.stderr.contains("hunter2"), "\(url)")
        let policy = CLI.run(base + ["--redis-fallback", "sometimes"])
        #expect(policy.status != 0)
        #expect(policy.stderr.contains("--redis-fallback"), "\(policy)")
    }
}
