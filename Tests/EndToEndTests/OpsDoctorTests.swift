import FakeOllama
import Foundation
import Testing
import Tollgate
import TollgateIO

/// `tollgate doctor` as an admin runs it: the real binary against a fake Ollama and a generated configuration, with
/// a fake /proc so that what it says about sockets does not depend on the machine running the test. Only the
/// checks the test controls are asserted (the firewall and the clock are this machine's).
@Suite(.enabled(if: CLI.tollgate != nil, "no tollgate binary at \(CLI.expectedPath): run `swift build` first"),
       .serialized)
struct OpsDoctorTests {
    /// A folder with a config for `upstream`, a bcrypt users file, a models folder and a fake /proc whose only
    /// listening socket is `ollamaSocket` (kernel hex, e.g. 0100007F:2CAA).
    private func setUp(upstream: UInt16, ollamaSocket: String) throws -> TempDir {
        let dir = try TempDir()
        try dir.write("tollgate.conf", """
            listen-plain = 127.0.0.1:0
            metrics-listen = off
            upstream = http://127.0.0.1:\(upstream)
            users = users.htpasswd
            state-dir = \(dir.path)/state

            """)
        try dir.write("users.htpasswd", "alice:$2y$05$m/HOzOyowX4pXSiRV2SAD.FkOWzDRmppreIDUiq9whtiN4tBZ9nju\n")
        #expect(mkdir(dir.path + "/models", 0o755) == 0)
        #expect(mkdir(dir.path + "/proc", 0o755) == 0)
        #expect(mkdir(dir.path + "/proc/net", 0o755) == 0)
        try dir.write("proc/net/tcp", """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: \(ollamaSocket) 00000000:0000 0A 00000000:00000000 00:00000000 00000000   997        0 4242 1 0 100 0 0 10 0

            """)
        try dir.write("proc/meminfo", "MemTotal:       16000000 kB\nMemAvailable:   12000000 kB\n")
        return dir
    }

    private func doctor(_ arguments: [String], in dir: TempDir) -> CLI.Result {
        CLI.run(["-c", "cd \"$0\" && exec \"$@\"", dir.path, CLI.tollgate ?? CLI.expectedPath, "doctor",
                 "--config", "tollgate.conf", "--proc-root", dir.path + "/proc", "--models-dir", dir.path + "/models"]
                + arguments, executable: "/bin/sh")
    }

    @Test func aHealthySetupReportsOllamaItsModelsAndLoopbackOnly() throws {
        let fake = try FakeOllamaServer(config: FakeOllamaConfig(port: 0, model: "mistral:7b"))
        fake.start()
        defer { fake.stop() }
        let dir = try setUp(upstream: fake.port, ollamaSocket: "0100007F:2CAA")
        let run = doctor([], in: dir)
        for line in [
            "✓ configuration: tollgate.conf: valid",
            "✓ users file: users.htpasswd: 1 user(s), no weak hashes",
            "✓ ollama http://127.0.0.1:\(fake.port): version 0.12.0, 1 model(s): mistral:7b",
            "✓ models: mistral pulled",
            "✓ ollama exposure: Ollama listens on loopback only (127.0.0.1:11434)",
            "✓ listen-plain 127.0.0.1:0: free",
            "✓ memory: 11.4 GiB available of 15.3 GiB",
        ] {
            #expect(run.stdout.contains(line), "missing \(line.debugDescription) in \(run)")
        }
        // Whatever this machine's firewall and clock say, the exit status follows the failures.
        #expect(run.status == (run.stdout.contains("✗") ? 1 : 0), "\(run)")
        let json = doctor(["--json"], in: dir)
        let parsed = try #require(DoctorJSON.parse(Array(json.stdout.utf8)), "\(json)")
        let checks = try #require(parsed["checks"]?.arrayValue)
        let models = try #require(checks.first { $0["name"]?.stringValue == "models" })
        #expect(models["status"]?.stringValue == "ok")
        #expect(parsed["ok"] == .bool(json.status == 0), "\(json)")
    }

    @Test func ollamaOnEveryAddressAMissingModelAndABadLineFail() throws {
        let fake = try FakeOllamaServer(config: FakeOllamaConfig(port: 0, model: "mistral:7b"))
        fake.start()
        defer { fake.stop() }
        let dir = try setUp(upstream: fake.port, ollamaSocket: "00000000:2CAA")
        try dir.write("tollgate.conf", try dir.read("tollgate.conf") + "burst = lots\n")
        let run = doctor(["--model", "qwen2.5:7b"], in: dir)
        #expect(run.status == 1, "\(run)")
        for line in [
            "✗ configuration: 1 problem(s) in tollgate.conf:",
            #"tollgate.conf:6: key "burst": expected an integer, got "lots""#,
            "✗ ollama exposure: OLLAMA IS OPEN TO THE NETWORK: it listens on 0.0.0.0:11434",
            "Environment=\"OLLAMA_HOST=127.0.0.1:11434\"",
            "✗ models: not pulled: qwen2.5:7b",
            "fix: ollama pull qwen2.5:7b",
        ] {
            #expect(run.stdout.contains(line), "missing \(line.debugDescription) in \(run)")
        }
    }

    @Test func noOllamaFailsWithWhereToLook() throws {
        // A port nothing listens on: bind one, read it, close it.
        let fd = try Socket.listen(on: SocketAddress(parsing: "127.0.0.1:0")!, reusePort: false)
        let port = Socket.localAddress(fd)!.port
        Syscall.close(fd)
        let dir = try setUp(upstream: port, ollamaSocket: "0100007F:2CAA")
        let run = doctor([], in: dir)
        #expect(run.status == 1, "\(run)")
        #expect(run.stdout.contains("✗ ollama http://127.0.0.1:\(port): no answer from 127.0.0.1:\(port)"), "\(run)")
        #expect(run.stdout.contains("fix: is Ollama running? systemctl status ollama"), "\(run)")
    }
}
