import Foundation
import Testing
import Tollgate
import TollgateIO

/// One running `tollgate serve` per state directory: a second one there exits at once naming the first's pid, the
/// first keeps serving, and the admin commands that edit the state database still work beside it.
@Suite(.enabled(if: CLI.tollgate != nil, "no tollgate binary at \(CLI.expectedPath): run `swift build` first"))
struct OpsStateLockTests {
    static let config = "listen-plain = 127.0.0.1:0\nmetrics-listen = off\nlog = none\nusers = users.htpasswd\n"

    /// Runs tollgate with `arguments` in `directory`.
    private func run(_ arguments: [String], in directory: String) throws -> CLI.Result {
        CLI.run(["-c", "cd \"$0\" && exec \"$@\"", directory, try #require(CLI.tollgate)] + arguments,
                executable: "/bin/sh")
    }

    /// The plain-HTTP port `server` said it serves on.
    private func plainPort(_ server: ServeProcess) throws -> UInt16 {
        let line = try #require(server.stderr.split(separator: "\n").first { $0.contains("serving http://") })
        let address = try #require(line.split(separator: "serving http://").last?.split(separator: " ").first)
        let digits = try #require(address.split(separator: ":").last)
        return try #require(UInt16(digits))
    }

    /// GET /healthz on `port`: the status.
    private func health(_ port: UInt16) throws -> Int {
        let client = HTTPClient(try RawSocket(port: port))
        defer { client.close() }
        try client.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        return try client.readResponse().status
    }

    @Test func aSecondServeOnTheSameStateDirectoryIsRefusedWhileTheFirstServes() throws {
        let dir = try TempDir()
        try dir.write("users.htpasswd", "alice:{PLAIN}x\n")
        try dir.write("tollgate.conf", Self.config)
        let state = dir.path + "/state"
        let first = try ServeProcess(arguments: ["serve", "--config", "tollgate.conf", "--state-dir", state],
                                     in: dir.path)
        defer { first.stop() }
        let port = try plainPort(first)
        #expect(try health(port) == 200)

        let second = try run(["serve", "--config", "tollgate.conf", "--state-dir", state], in: dir.path)
        #expect(second.status != 0, "\(second)")
        // One line, as every start-up failure is printed.
        #expect(second.stderr == "Error: tollgate: state directory \(state) is in use by another running tollgate serve "
                + "(pid \(first.pid)); give each server its own state-dir\n", "\(second)")
        // The quick start's default (a folder state beside the users file) is the same directory, and refused too.
        let byDefault = try run(["serve", "--config", "tollgate.conf"], in: dir.path)
        #expect(byDefault.status != 0, "\(byDefault)")
        #expect(byDefault.stderr.contains("state directory state is in use by another running tollgate serve (pid "
                                          + "\(first.pid))"), "\(byDefault)")
        #expect(first.process.isRunning)
        #expect(try health(port) == 200, "the first server stopped serving")

        // The commands that edit or read the state database work beside the running server.
        let created = try run(["keys", "create", "alice", "--name", "laptop", "--config", "tollgate.conf",
                               "--state-dir", state], in: dir.path)
        #expect(created.status == 0, "\(created)")
        #expect(created.stdout.contains("tg_"), "\(created)")
        let listed = try run(["keys", "list", "--config", "tollgate.conf", "--state-dir", state], in: dir.path)
        #expect(listed.status == 0 && listed.stdout.contains("laptop"), "\(listed)")
        let usage = try run(["usage", "--config", "tollgate.conf", "--state-dir", state], in: dir.path)
        #expect(usage.status == 0, "\(usage)")

        // Once the first has stopped, a new server starts on the directory and names itself in the lock file.
        first.stop()
        let next = try ServeProcess(arguments: ["serve", "--config", "tollgate.conf", "--state-dir", state],
                                    in: dir.path)
        defer { next.stop() }
        #expect(try health(try plainPort(next)) == 200)
        #expect(try String(contentsOfFile: state + "/" + StateLock.fileName, encoding: .utf8) == "\(next.pid)\n")
    }
}
