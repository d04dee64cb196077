import Foundation
import Testing
@testable import Tollgate

/// The status file a running server keeps for `tollgate reload`, and where the server and the command look for it.
@Suite struct ReloadStatusTests {
    @Test func theTextRoundTripsWithEveryMessageLine() {
        let failed = ReloadStatus(pid: 4321, generation: 7, ok: false,
                                  messages: ["configuration:", "/etc/tollgate/tollgate.conf:3: key \"burst\": expected an integer, got \"lots\"",
                                             "nothing changed"])
        #expect(failed.text.hasPrefix("pid 4321\ngeneration 7\nresult error\nconfiguration:\n"))
        #expect(ReloadStatus(text: failed.text) == failed)
        let started = ReloadStatus(pid: 9, generation: 0, ok: true, messages: [])
        #expect(ReloadStatus(text: started.text) == started)
        #expect(ReloadStatus(text: "") == nil)
        #expect(ReloadStatus(text: "pid x\ngeneration 1\nresult ok\n") == nil)
        #expect(ReloadStatus(text: "pid 1\ngeneration 1\nresult maybe\n") == nil)
    }

    @Test func writtenAtomicallyReadBackAndRemovedOnlyByItsServer() throws {
        let dir = NSTemporaryDirectory() + "tollgate-status-\(getpid())-\(UUID().uuidString)"
        #expect(mkdir(dir, 0o755) == 0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(ReloadStatus.read(from: dir) == nil)
        let status = ReloadStatus(pid: 77, generation: 2, ok: true, messages: ["reloaded the configuration"])
        try status.write(to: dir)
        #expect(ReloadStatus.read(from: dir) == status)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [ReloadStatus.fileName])
        ReloadStatus.remove(from: dir, pid: 78)
        #expect(ReloadStatus.read(from: dir) == status, "another server's exit removed the file")
        ReloadStatus.remove(from: dir, pid: 77)
        #expect(ReloadStatus.read(from: dir) == nil)
        #expect(throws: (any Error).self) { try status.write(to: dir + "/missing") }
    }

    @Test func aLinkAtTheTemporaryNameIsNotFollowedAndTheFileIsPrivate() throws {
        let dir = NSTemporaryDirectory() + "tollgate-status-\(getpid())-\(UUID().uuidString)"
        #expect(mkdir(dir, 0o755) == 0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/target"
        try "untouched\n".write(toFile: target, atomically: false, encoding: .utf8)
        let temporary = dir + "/" + ReloadStatus.fileName + ".tmp"
        #expect(symlink(target, temporary) == 0)
        let status = ReloadStatus(pid: 77, generation: 1, ok: false, messages: ["tollgate.conf:2: secret detail"])
        try status.write(to: dir)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "untouched\n")
        #expect(ReloadStatus.read(from: dir) == status)
        var info = stat()
        #expect(lstat(dir + "/" + ReloadStatus.fileName, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFREG)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(access(temporary, F_OK) != 0)
    }

    @Test func theServersMessagesArePrintedWithControlsEscaped() {
        #expect(ReloadStatus.printable("reloaded the configuration") == "reloaded the configuration")
        #expect(ReloadStatus.printable("a\u{1B}]0;pwned\u{07}b") == "a\\u{1B}]0;pwned\\u{7}b")
        #expect(ReloadStatus.printable("\r\t\u{7F}\u{9B}") == "\\u{D}\\u{9}\\u{7F}\\u{9B}")
        #expect(ReloadStatus.printable("x\u{202E}y\u{2066}z\u{2028}") == "x\\u{202E}y\\u{2066}z\\u{2028}")
        #expect(ReloadStatus.printable("café ü") == "café ü")
    }

    @Test func theTargetMustBeATollgateServer() throws {
        // This test process is its own executable: what a server looks like to `tollgate reload` run from it.
        #expect(ReloadStatus.target(getpid()) == .server(uid: getuid()))
        #expect(ReloadStatus.target(Int32.max - 1) == .notRunning)
        let other = Process()
        other.executableURL = URL(fileURLWithPath: "/bin/sleep")
        other.arguments = ["600"]
        try other.run()
        defer {
            // SIGKILL: the test process may have SIGTERM blocked (Signals.block), and a child keeps that mask.
            kill(other.processIdentifier, SIGKILL)
            other.waitUntilExit()
        }
        #expect(ReloadStatus.target(other.processIdentifier) == .other)
    }

    @Test func aStatusFileOthersCouldWriteOrALinkIsNotBelieved() throws {
        let dir = NSTemporaryDirectory() + "tollgate-status-\(getpid())-\(UUID().uuidString)"
        #expect(mkdir(dir, 0o700) == 0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ReloadStatus(pid: 77, generation: 0, ok: true, messages: []).write(to: dir)
        #expect(ReloadStatus.distrust(in: dir, owner: getuid()) == nil)
        if getuid() != 0 {
            #expect(ReloadStatus.distrust(in: dir, owner: getuid() + 1)?.contains("neither root nor") == true)
        }
        #expect(chmod(dir, 0o770) == 0)
        #expect(ReloadStatus.distrust(in: dir, owner: getuid()) == "\(dir) is writable by its group or by others")
        #expect(chmod(dir, 0o700) == 0)
        let path = dir + "/" + ReloadStatus.fileName
        #expect(chmod(path, 0o666) == 0)
        #expect(ReloadStatus.distrust(in: dir, owner: getuid()) == "\(path) is writable by its group or by others")
        #expect(rename(path, dir + "/elsewhere") == 0)
        #expect(symlink(dir + "/elsewhere", path) == 0)
        #expect(ReloadStatus.distrust(in: dir, owner: getuid())?.contains("not a plain file") == true)
    }

    @Test func theStateDirectoryIsTheSettingElseSystemdsElseThePidFilesDirectory() {
        let runDefault = access("/run/tollgate", F_OK) == 0 ? ["/run/tollgate"] : []
        #expect(ReloadStatus.directory(stateDir: "/var/lib/tg", pidFile: "/run/x.pid",
                                       environment: ["RUNTIME_DIRECTORY": "/run/tollgate"]) == "/var/lib/tg")
        // What the shipped unit gives the server (RuntimeDirectory=tollgate), and what an admin's shell then finds.
        #expect(ReloadStatus.directory(stateDir: nil, pidFile: nil,
                                       environment: ["RUNTIME_DIRECTORY": "/run/tollgate"]) == "/run/tollgate")
        #expect(ReloadStatus.candidates(stateDir: nil, pidFile: "/run/tollgate/tollgate.pid", environment: [:])
                == ["/run/tollgate"])
        #expect(ReloadStatus.candidates(stateDir: nil, pidFile: "/srv/tg/tollgate.pid",
                                        environment: ["RUNTIME_DIRECTORY": "/run/a:/run/b"])
                == ["/run/a", "/srv/tg"] + runDefault)
        #expect(ReloadStatus.candidates(stateDir: nil, pidFile: "tollgate.pid", environment: [:]) == ["."] + runDefault)
        #expect(ReloadStatus.candidates(stateDir: nil, pidFile: nil, environment: [:]) == runDefault)
    }
}
