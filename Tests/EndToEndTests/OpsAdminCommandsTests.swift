import Foundation
import Testing
import Tollgate
import TollgateIO

/// `tollgate check-config` and `tollgate reload` as an admin runs them: check-config validates what `serve` would
/// run (in the quick-start folder too, where serve creates the development pair and the users file) and lists every
/// problem at once; reload reports what the running server did with the new configuration and fails when it failed.
@Suite(.enabled(if: CLI.tollgate != nil, "no tollgate binary at \(CLI.expectedPath): run `swift build` first"))
struct OpsAdminCommandsTests {
    /// Runs tollgate with `arguments` in `directory`.
    private func run(_ arguments: [String], in directory: String) throws -> CLI.Result {
        CLI.run(["-c", "cd \"$0\" && exec \"$@\"", directory, try #require(CLI.tollgate)] + arguments,
                executable: "/bin/sh")
    }

    @Test func checkConfigInTheQuickStartFolderSaysWhatServeWillCreate() throws {
        let dir = try TempDir()
        let run = try run(["check-config", "--listen", "127.0.0.1:1", "--metrics-listen", "off"], in: dir.path)
        #expect(run.status == 0, "\(run)")
        #expect(run.stderr.contains("serve will create a self-signed development certificate certs/dev-cert.pem"), "\(run)")
        #expect(run.stderr.contains("users file users.htpasswd: serve will create it"), "\(run)")
        #expect(run.stderr.contains("configuration ok"), "\(run)")
        // It created nothing: serve does that.
        #expect(access(dir.path + "/certs", F_OK) != 0)
        #expect(access(dir.path + "/users.htpasswd", F_OK) != 0)
    }

    @Test func checkConfigChecksTheDevelopmentPairServeMade() throws {
        let dir = try TempDir()
        _ = try DevelopmentCertificate.ensure(in: dir.path + "/certs")
        try dir.write("users.htpasswd", "alice:{PLAIN}x\n")
        let run = try run(["check-config", "--listen", "127.0.0.1:1", "--metrics-listen", "off"], in: dir.path)
        #expect(run.status == 0, "\(run)")
        #expect(run.stderr.contains("certificate certs/dev-cert.pem: ok, expires in 89 day(s)")
                || run.stderr.contains("certificate certs/dev-cert.pem: ok, expires in 90 day(s)"), "\(run)")
        #expect(run.stderr.contains("users file users.htpasswd: 1 user(s)"), "\(run)")
        // A broken pair is an error, as serve would find.
        try dir.write("certs/dev-key.pem", "not a key\n")
        let broken = try self.run(["check-config", "--listen", "127.0.0.1:1", "--metrics-listen", "off"], in: dir.path)
        #expect(broken.status != 0, "\(broken)")
        #expect(broken.stderr.contains("dev-key.pem"), "\(broken)")
    }

    @Test func checkConfigListsSyntaxValueAndFileProblemsAtOnce() throws {
        let dir = try TempDir()
        try dir.write("tollgate.conf", """
            listen-plain = 127.0.0.1:0
            burst = lots
            not a setting
            upstream = http://name.invalid:11434
            users = \(dir.path)/missing.htpasswd
            metrics-listen = off

            """)
        let run = try run(["check-config", "--config", "tollgate.conf"], in: dir.path)
        #expect(run.status == 1, "\(run)")
        for expected in [
            #"tollgate.conf:2: key "burst": expected an integer, got "lots""#,
            #"tollgate.conf:3: expected "key = value", got "not a setting""#,
            #"tollgate.conf:4: key "upstream": host "name.invalid" does not resolve"#,
            "users file \(dir.path)/missing.htpasswd does not exist",
        ] {
            #expect(run.stderr.contains(expected), "missing \(expected.debugDescription) in \(run)")
        }
    }

    @Test func reloadReportsTheOutcomeAndFailsWhenTheServerRefusedTheConfig() throws {
        let dir = try TempDir()
        try dir.write("users.htpasswd", "alice:{PLAIN}x\n")
        let good = "listen-plain = 127.0.0.1:0\nmetrics-listen = off\nlog = none\nusers = users.htpasswd\n"
        try dir.write("tollgate.conf", good)
        #expect(mkdir(dir.path + "/state", 0o755) == 0)
        let server = try ServeProcess(arguments: ["serve", "--config", "tollgate.conf", "--state-dir", dir.path + "/state"],
                                      in: dir.path)
        defer { server.stop() }
        let status = try #require(ReloadStatus.read(from: dir.path + "/state"), "no status file at start")
        #expect(status.pid == server.pid && status.generation == 0 && status.ok)

        try dir.write("tollgate.conf", good + "realm = Changed\n")
        let ok = try self.run(["reload", "--state-dir", dir.path + "/state"], in: dir.path)
        #expect(ok.status == 0, "\(ok)")
        #expect(ok.stdout.contains("reloaded the configuration"), "\(ok)")

        try dir.write("tollgate.conf", good + "burst = lots\nrealm\n")
        let bad = try self.run(["reload", "--state-dir", dir.path + "/state"], in: dir.path)
        #expect(bad.status == 1, "\(bad)")
        #expect(bad.stderr.contains(#"tollgate.conf:5: key "burst": expected an integer, got "lots""#), "\(bad)")
        #expect(bad.stderr.contains(#"tollgate.conf:6: expected "key = value", got "realm""#), "\(bad)")
        #expect(bad.stderr.contains("nothing changed"), "\(bad)")
        #expect(ReloadStatus.read(from: dir.path + "/state")?.generation == 2)

        // The state directory is found from the config too, as the server found it.
        try dir.write("tollgate.conf", good + "state-dir = \(dir.path)/state\n")
        let again = try self.run(["reload", "--config", "tollgate.conf"], in: dir.path)
        #expect(again.status == 0, "\(again)")
        server.stop()
        #expect(ReloadStatus.read(from: dir.path + "/state") == nil, "the status file outlived the server")
    }

    @Test func reloadWithoutARunningServerSaysSo() throws {
        let dir = try TempDir()
        #expect(mkdir(dir.path + "/state", 0o755) == 0)
        let run = try run(["reload", "--state-dir", dir.path + "/state"], in: dir.path)
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("no running tollgate found"), "\(run)")
        // A stale status file (its server gone) is not taken for a running server.
        try ReloadStatus(pid: Int32.max - 1, generation: 0, ok: true, messages: ["started"]).write(to: dir.path + "/state")
        let stale = try self.run(["reload", "--state-dir", dir.path + "/state"], in: dir.path)
        #expect(stale.status == 1, "\(stale)")
        #expect(stale.stderr.contains("it is not running"), "\(stale)")
    }
}

extension OpsAdminCommandsTests {
    @Test func reloadSignalsOnlyATollgateServerNamedByATrustworthyFile() throws {
        let dir = try TempDir()
        #expect(mkdir(dir.path + "/state", 0o700) == 0)
        // A status file naming some other program: it is not sent SIGHUP (which would end it).
        let other = Process()
        other.executableURL = URL(fileURLWithPath: "/bin/sleep")
        other.arguments = ["600"]
        try other.run()
        defer {
            // SIGKILL: the test process may have SIGTERM blocked (Signals.block), and a child keeps that mask.
            if other.isRunning { kill(other.processIdentifier, SIGKILL) }
            other.waitUntilExit()
        }
        try ReloadStatus(pid: other.processIdentifier, generation: 0, ok: true, messages: ["started"])
            .write(to: dir.path + "/state")
        let run = try run(["reload", "--state-dir", dir.path + "/state"], in: dir.path)
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("names pid \(other.processIdentifier), which is not a tollgate server; remove "
                                    + "\(dir.path)/state/\(ReloadStatus.fileName) if stale"), "\(run)")
        #expect(other.isRunning, "reload signalled a process that is not tollgate")
        // A relative state directory is refused: the server resolved it against its own working directory.
        let relative = try self.run(["reload", "--state-dir", "state"], in: dir.path)
        #expect(relative.status == 1, "\(relative)")
        #expect(relative.stderr.contains(#"state-dir "state" is relative"#), "\(relative)")
        try dir.write("tollgate.conf", "pid-file = tollgate.pid\n")
        let relativePid = try self.run(["reload", "--config", "tollgate.conf"], in: dir.path)
        #expect(relativePid.status == 1, "\(relativePid)")
        #expect(relativePid.stderr.contains(#"pid-file "tollgate.pid" is relative"#), "\(relativePid)")
    }

    @Test func reloadDoesNotTrustAStatusFileOthersCouldHaveWritten() throws {
        let dir = try TempDir()
        try dir.write("users.htpasswd", "alice:{PLAIN}x\n")
        try dir.write("tollgate.conf", "listen-plain = 127.0.0.1:0\nmetrics-listen = off\nlog = none\nusers = users.htpasswd\n")
        #expect(mkdir(dir.path + "/state", 0o700) == 0)
        let server = try ServeProcess(arguments: ["serve", "--config", "tollgate.conf", "--state-dir", dir.path + "/state"],
                                      in: dir.path)
        defer { server.stop() }
        #expect(chmod(dir.path + "/state", 0o777) == 0)
        let open = try run(["reload", "--state-dir", dir.path + "/state"], in: dir.path)
        #expect(open.status == 1, "\(open)")
        #expect(open.stderr.contains("\(dir.path)/state is writable by its group or by others"), "\(open)")
        #expect(ReloadStatus.read(from: dir.path + "/state")?.generation == 0, "the server was signalled")
        #expect(chmod(dir.path + "/state", 0o700) == 0)
        let ok = try run(["reload", "--state-dir", dir.path + "/state"], in: dir.path)
        #expect(ok.status == 0, "\(ok)")
    }
}

/// `tollgate serve` running in the background, ready once it has printed the line naming its listener.
final class ServeProcess {
    let process = Process()
    private let errors = Pipe()
    /// Its standard error up to the ready line.
    private(set) var stderr = ""
    var pid: Int32 { process.processIdentifier }

    init(arguments: [String], in directory: String) throws {
        process.executableURL = URL(fileURLWithPath: try #require(CLI.tollgate))
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        // Ready when it names its listener; end of file first means it exited.
        while !stderr.contains("serving http") {
            let data = errors.fileHandleForReading.availableData
            if data.isEmpty { throw WireError("tollgate serve exited before it was ready: \(stderr)") }
            stderr += String(decoding: data, as: UTF8.self)
        }
    }

    /// SIGTERM, then waits for the exit.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    deinit { stop() }
}
