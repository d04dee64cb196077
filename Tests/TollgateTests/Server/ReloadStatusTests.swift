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
