import Dispatch
import Foundation
import Glibc
import Testing
import Tollgate

/// The built `tollgate users` binary, run as an admin would: concurrent edits under the lock, clear failures,
/// `verify`'s exit status, htpasswd compatibility both ways, and the file's mode kept across edits.
@Suite(.enabled(if: CLI.tollgate != nil, "no tollgate binary at \(CLI.expectedPath): run `swift build` first"))
struct AuthCLITests {
    @Test func tenConcurrentAddsAllLand() throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        // An existing file with a comment and a user, whose order and comment must survive.
        try dir.write("users.htpasswd", "# team file\nexisting:{PLAIN}kept\n")
        let names = (0..<10).map { "user\($0)" }
        let results = Locked([CLI.Result?](repeating: nil, count: names.count))
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            let result = CLI.run(["users", "add", names[i], "--file", file, "--password-stdin", "--allow-weak-password", "--cost", "4"],
                                 stdin: "pw-\(names[i])\n")
            results.update { $0[i] = result }
        }
        for (name, result) in zip(names, results.value) {
            let result = try #require(result)
            #expect(result.status == 0, "add \(name): \(result)")
        }
        let users = try UsersFile.load(path: file)
        #expect(Set(users.entries.keys) == Set(names + ["existing"]), "lost an edit: \(users.entries.keys.sorted())")
        for name in names {
            let entry = try #require(users.entries[name])
            #expect(entry.hash.hasPrefix("$2y$04$"))
            #expect(PasswordVerifier.verify(password: Array("pw-\(name)".utf8), against: entry.hash, format: entry.format))
        }
        let text = try dir.read("users.htpasswd")
        #expect(text.hasPrefix("# team file\nexisting:{PLAIN}kept\n"), "comment or order lost: \(text)")
        #expect(text.split(separator: "\n").count == 12)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["users.htpasswd"], "a stray file")
    }

    @Test func passwdOfAMissingUserFailsClearly() throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        try dir.write("users.htpasswd", "alice:{PLAIN}a\n")
        let result = CLI.run(["users", "passwd", "nobody", "--file", file, "--password-stdin", "--allow-weak-password", "--cost", "4"],
                             stdin: "pw\n")
        #expect(result.status != 0)
        #expect(result.stderr.contains("no user \"nobody\""), "\(result)")
        #expect(result.stderr.contains(file), "the message names the file: \(result)")
        #expect(result.stderr.contains("tollgate users add nobody"), "the message says what to do: \(result)")
        #expect(try dir.read("users.htpasswd") == "alice:{PLAIN}a\n", "the file changed")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/users.htpasswd.tmp-\(result.pid)"))

        // passwd of an existing user works and changes only that line.
        let ok = CLI.run(["users", "passwd", "alice", "--file", file, "--password-stdin", "--allow-weak-password", "--cost", "4"], stdin: "new\n")
        #expect(ok.status == 0, "\(ok)")
        let alice = try #require(try UsersFile.load(path: file).entries["alice"])
        #expect(PasswordVerifier.verify(password: Array("new".utf8), against: alice.hash, format: alice.format))
    }

    @Test func verifyExitsZeroForTheRightPasswordAndOneForAWrongOne() throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        let add = CLI.run(["users", "add", "carol", "--file", file, "--password-stdin", "--allow-weak-password", "--cost", "4"], stdin: "right\n")
        #expect(add.status == 0, "\(add)")
        let right = CLI.run(["users", "verify", "carol", "--file", file, "--password-stdin"], stdin: "right\n")
        #expect(right.status == 0, "\(right)")
        let wrong = CLI.run(["users", "verify", "carol", "--file", file, "--password-stdin"], stdin: "wrong\n")
        #expect(wrong.status == 1, "\(wrong)")
        #expect(wrong.stdout.contains("wrong"), "\(wrong)")
        let unknown = CLI.run(["users", "verify", "dave", "--file", file, "--password-stdin"], stdin: "right\n")
        #expect(unknown.status != 0, "\(unknown)")
        #expect(unknown.stderr.contains("no user \"dave\""), "\(unknown)")
    }

    @Test(.enabled(if: CLI.htpasswd != nil, "htpasswd not installed (apt-get install apache2-utils)"))
    func htpasswdAcceptsWhatTollgateWrites() throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        for (name, password) in [("erin", "e-pass"), ("frank", "p@ss word:with colon")] {
            let add = CLI.run(["users", "add", name, "--file", file, "--password-stdin", "--allow-weak-password", "--cost", "5"],
                              stdin: password + "\n")
            #expect(add.status == 0, "\(add)")
            let accepted = CLI.run(["-vb", file, name, password], executable: try #require(CLI.htpasswd))
            #expect(accepted.status == 0, "htpasswd -vb \(name): \(accepted)")
            let refused = CLI.run(["-vb", file, name, password + "x"], executable: try #require(CLI.htpasswd))
            #expect(refused.status != 0, "htpasswd accepted a wrong password: \(refused)")
        }
    }

    @Test(.enabled(if: CLI.htpasswd != nil, "htpasswd not installed (apt-get install apache2-utils)"),
          arguments: [("-B", "bcrypt"), ("-m", "apr1"), ("-s", "sha1")])
    func tollgateAcceptsWhatHtpasswdWrites(_ flag: String, _ format: String) throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        let htpasswd = try #require(CLI.htpasswd)
        let created = CLI.run(["-cb", flag, file, "gina", "g1na-pass"], executable: htpasswd)
        #expect(created.status == 0, "\(created)")
        let added = CLI.run(["-b", flag, file, "hal", "h@l pass"], executable: htpasswd)
        #expect(added.status == 0, "\(added)")

        let users = try UsersFile.load(path: file)
        for (name, password) in [("gina", "g1na-pass"), ("hal", "h@l pass")] {
            let entry = try #require(users.entries[name])
            #expect("\(entry.format)".lowercased().contains(format), "\(flag) gave \(entry.format)")
            #expect(PasswordVerifier.verify(password: Array(password.utf8), against: entry.hash, format: entry.format))
            #expect(!PasswordVerifier.verify(password: Array((password + "!").utf8), against: entry.hash,
                                             format: entry.format))
            // And the CLI's verify agrees.
            let verify = CLI.run(["users", "verify", name, "--file", file, "--password-stdin"], stdin: password + "\n")
            #expect(verify.status == 0, "\(verify)")
        }
    }

    @Test(arguments: [0o640, 0o600, 0o644])
    func anEditKeepsTheFilesMode(_ mode: Int) throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        try dir.write("users.htpasswd", "ivan:{PLAIN}i\n")
        #expect(chmod(file, mode_t(mode)) == 0)
        let add = CLI.run(["users", "add", "judy", "--file", file, "--password-stdin", "--allow-weak-password", "--cost", "4"], stdin: "j\n")
        #expect(add.status == 0, "\(add)")
        #expect(try TempDir.mode(file) == mode, "mode after add")
        let passwd = CLI.run(["users", "passwd", "ivan", "--file", file, "--password-stdin", "--allow-weak-password", "--cost", "4"], stdin: "i2\n")
        #expect(passwd.status == 0, "\(passwd)")
        #expect(try TempDir.mode(file) == mode, "mode after passwd")
        let remove = CLI.run(["users", "remove", "judy", "--file", file])
        #expect(remove.status == 0, "\(remove)")
        #expect(try TempDir.mode(file) == mode, "mode after remove")
        #expect(try UsersFile.load(path: file).entries.keys.sorted() == ["ivan"])
    }

    @Test(arguments: ["077", "000"])
    func aNewFileIs0640WhateverTheUmask(_ umask: String) throws {
        let dir = try TempDir()
        let file = dir.path + "/new.htpasswd"
        let add = CLI.run(["-c", "umask \(umask) && exec \"$0\" \"$@\"", try #require(CLI.tollgate), "users", "add", "kim",
                           "--file", file, "--password-stdin", "--allow-weak-password", "--cost", "4"], stdin: "k\n", executable: "/bin/sh")
        #expect(add.status == 0, "\(add)")
        #expect(try TempDir.mode(file) == 0o640)
    }

    @Test func addRefusesAnExistingUserAndPointsToPasswd() throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        try dir.write("users.htpasswd", "# team\nalice:{PLAIN}a\n")
        let add = CLI.run(["users", "add", "alice", "--file", file, "--password-stdin", "--cost", "4"],
                          stdin: "a-long-enough-password\n")
        #expect(add.status != 0, "\(add)")
        #expect(add.stderr.contains("\(file):2: user \"alice\" already exists"), "\(add)")
        #expect(add.stderr.contains("tollgate users passwd alice"), "the message says what to do: \(add)")
        #expect(try dir.read("users.htpasswd") == "# team\nalice:{PLAIN}a\n", "the file changed")

        // passwd replaces the user's line, and removes a duplicate line that disabled it.
        try dir.write("users.htpasswd", "# team\nalice:{PLAIN}a\nbob:{PLAIN}b\nalice:{PLAIN}c\n")
        let passwd = CLI.run(["users", "passwd", "alice", "--file", file, "--password-stdin", "--cost", "4"],
                             stdin: "a-long-enough-password\n")
        #expect(passwd.status == 0, "\(passwd)")
        let users = try UsersFile.load(path: file)
        #expect(users.disabled.isEmpty)
        #expect(users.entries.keys.sorted() == ["alice", "bob"])
        #expect(users.entries["alice"]?.line == 2)
    }

    @Test func weakPasswordsAreRefusedUnlessAllowed() throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        for (command, name) in [("add", "leo"), ("passwd", "mia")] {
            if command == "passwd" { try dir.write("users.htpasswd", "mia:{PLAIN}old\n") }
            for weak in ["abc", "eleven-char", name == "mia" ? "mia" : "leo"] {
                let refused = CLI.run(["users", command, name, "--file", file, "--password-stdin", "--cost", "4"],
                                      stdin: weak + "\n")
                #expect(refused.status != 0, "\(command) with \(weak): \(refused)")
                #expect(refused.stderr.contains("--allow-weak-password"), "\(refused)")
            }
            let short = CLI.run(["users", command, name, "--file", file, "--password-stdin", "--cost", "4"], stdin: "abc\n")
            #expect(short.stderr.contains("too short (3 characters; at least 12)"), "\(short)")
            let allowed = CLI.run(["users", command, name, "--file", file, "--password-stdin", "--cost", "4",
                                   "--allow-weak-password"], stdin: "abc\n")
            #expect(allowed.status == 0, "\(allowed)")
            let entry = try #require(try UsersFile.load(path: file).entries[name])
            #expect(PasswordVerifier.verify(password: Array("abc".utf8), against: entry.hash, format: entry.format))
            let long = CLI.run(["users", command == "add" ? "passwd" : command, name, "--file", file, "--password-stdin",
                                "--cost", "4"], stdin: "twelve-chars\n")
            #expect(long.status == 0, "a 12-character password: \(long)")
            try? FileManager.default.removeItem(atPath: file)
        }
        // Generated passwords are long enough.
        let generated = CLI.run(["users", "add", "ned", "--file", file, "--generate", "--cost", "4"])
        #expect(generated.status == 0, "\(generated)")
    }

    @Test func editsLeaveNothingButTheUsersFile() throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        let steps: [[String]] = [["add", "olga"], ["add", "pete"], ["passwd", "olga"], ["remove", "pete"]]
        for step in steps {
            let result = CLI.run(["users"] + step + ["--file", file] + (step[0] == "remove" ? [] : ["--generate", "--cost", "4"]))
            #expect(result.status == 0, "\(step): \(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["users.htpasswd"],
                    "after \(step)")
        }
        // A refused edit leaves nothing either.
        let refused = CLI.run(["users", "remove", "nobody", "--file", file])
        #expect(refused.status != 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["users.htpasswd"])
        #expect(try UsersFile.load(path: file).entries.keys.sorted() == ["olga"])
    }

    /// An nginx file as admins have them: hashes made by `openssl passwd -1` and `htpasswd -d/-B/-m/-s`, plus a
    /// line Tollgate cannot use. Every usable user verifies; `list` lists all (marking the unusable line) and exits 0.
    @Test(.enabled(if: CLI.htpasswd != nil && access("/usr/bin/openssl", X_OK) == 0, "htpasswd or openssl missing"))
    func anNginxFileWithAnUnusableLineListsAndVerifies() throws {
        let dir = try TempDir()
        let file = dir.path + "/users.htpasswd"
        let htpasswd = try #require(CLI.htpasswd)
        let md5 = CLI.run(["passwd", "-1", "md5-password"], executable: "/usr/bin/openssl")
        #expect(md5.status == 0, "\(md5)")
        try dir.write("users.htpasswd", "md5:\(md5.stdout.split(separator: "\n").first ?? "")\nbroken:{MD4}abc\n")
        let users = [("des", "-d", "des-pw"), ("bc", "-B", "bcrypt-pw"), ("ap", "-m", "apr1-pw"), ("sh", "-s", "sha1-pw")]
        for (name, flag, password) in users {
            let added = CLI.run(["-b", flag, file, name, password], executable: htpasswd)
            #expect(added.status == 0, "\(added)")
        }
        let list = CLI.run(["users", "list", "--file", file])
        #expect(list.status == 0, "\(list)")
        let rows = list.stdout.split(separator: "\n").filter { !$0.hasPrefix("warning: ") }
        #expect(rows.map { String($0.split(separator: "\t")[0]) } == ["md5", "broken", "des", "bc", "ap", "sh"], "\(list)")
        #expect(rows[1] == "broken\tdisabled: unknown hash format\tline 2", "\(list)")
        #expect(list.stdout.contains("warning: \(file):2: user \"broken\" cannot log in: unknown hash format"), "\(list)")
        for weak in ["md5\" uses $1$", "des\" uses DES crypt", "ap\" uses $apr1$", "sh\" uses {SHA}"] {
            #expect(list.stdout.contains(weak), "no warning for \(weak): \(list)")
        }
        for (name, password) in [("md5", "md5-password")] + users.map({ ($0.0, $0.2) }) {
            let right = CLI.run(["users", "verify", name, "--file", file, "--password-stdin"], stdin: password + "\n")
            #expect(right.status == 0, "\(name): \(right)")
            let wrong = CLI.run(["users", "verify", name, "--file", file, "--password-stdin"], stdin: "x" + password + "\n")
            #expect(wrong.status == 1, "\(name): \(wrong)")
        }
        let broken = CLI.run(["users", "verify", "broken", "--file", file, "--password-stdin"], stdin: "x\n")
        #expect(broken.status != 0)
        #expect(broken.stderr.contains("\(file):2: user \"broken\" cannot log in: unknown hash format"), "\(broken)")
    }

    /// `serve` starts with a users file holding a line it cannot use (that user is disabled, with file and line in
    /// the warning), and the weak-hash warning is logged once, not again at each reload.
    @Test func serveStartsWithAnUnusableLineAndWarnsOncePerLine() throws {
        let dir = try TempDir()
        try dir.write("users.htpasswd", "old:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\nbroken:{MD4}abc\n")
        let file = dir.path + "/users.htpasswd"
        let serve = try ServeWatch(["serve", "--users", file, "--listen-plain", "127.0.0.1:0", "--metrics-listen",
                                      "127.0.0.1:0", "--upstream", "http://127.0.0.1:9"], in: dir.path)
        #expect(serve.waitFor("proxying to").contains("proxying to"), "serve did not start")
        serve.send(SIGHUP)
        _ = serve.waitFor("reloaded \(file)")
        serve.send(SIGHUP)
        let output = serve.waitFor("reloaded \(file)", count: 2)
        serve.stop()
        #expect(output.components(separatedBy: "reloaded \(file): 1 user(s), 1 line(s) disabled").count == 3, "\(output)")
        #expect(output.components(separatedBy: "\(file):1: user").count == 2, "warned more than once: \(output)")
        #expect(output.components(separatedBy: "\(file):2: user").count == 2, "\(output)")
        #expect(output.contains("uses {SHA} (unsalted SHA-1)"), "\(output)")
        #expect(output.contains("cannot log in: unknown hash format"), "\(output)")
    }

    /// `serve`'s first start creates one user whose name and rights agree (an ordinary user, not called admin), with
    /// the cost `users add` uses, and leaves no lock file behind.
    @Test func theGeneratedFirstUserIsAnOrdinaryUserWithTheUsualCost() throws {
        let dir = try TempDir()
        let serve = try ServeWatch(["serve", "--listen-plain", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                                      "--upstream", "http://127.0.0.1:9"], in: dir.path)
        let output = serve.waitFor("proxying to")
        serve.stop()
        let users = try UsersFile.load(path: dir.path + "/users.htpasswd")
        #expect(users.entries.keys.sorted() == ["user"], "\(output)")
        #expect(users.entries["user"]?.format == .bcrypt(cost: UsersFileEditor.defaultCost))
        #expect(output.contains("user: user    password: "), "\(output)")
        #expect(output.contains("is an ordinary user") && output.contains("admin = user"), "\(output)")
        #expect(!output.contains("admin:"), "\(output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("users") }
                == ["users.htpasswd"])
    }
}

/// Running binaries for the CLI tests.
enum CLI {
    /// The package root, from this file's path (Tests/EndToEndTests/AuthCLITests.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    /// Where `swift build` puts the debug binary.
    static let expectedPath = packageRoot + "/.build/debug/tollgate"
    /// The built binary, or nil when it is missing.
    static let tollgate: String? = access(expectedPath, X_OK) == 0 ? expectedPath : nil
    /// `htpasswd` (apache2-utils), or nil when not installed.
    static let htpasswd: String? = ["/usr/bin/htpasswd", "/usr/local/bin/htpasswd", "/bin/htpasswd"]
        .first { access($0, X_OK) == 0 }

    /// What a run produced.
    struct Result: CustomStringConvertible, Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
        var pid: Int32
        var description: String { "exit \(status), stdout: \(stdout.debugDescription), stderr: \(stderr.debugDescription)" }
    }

    /// Runs `executable` (default: tollgate) with `arguments`, feeding `stdin`, and waits for it.
    static func run(_ arguments: [String], stdin: String = "", executable: String? = nil) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable ?? tollgate ?? expectedPath)
        process.arguments = arguments
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch {
            return Result(status: -1, stdout: "", stderr: "cannot run \(process.executableURL!.path): \(error)", pid: 0)
        }
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try? input.fileHandleForWriting.close()
        // Read both pipes to EOF (outputs are small), then reap.
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self), pid: process.processIdentifier)
    }
}

/// A value shared by concurrent closures.
final class Locked<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}

/// A temporary directory removed (with its contents) when released.
final class TempDir {
    let path: String

    init() throws {
        var template = Array("/tmp/tollgate-e2e-cli-XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw WireError("mkdtemp failed: errno \(errno)")
        }
        path = String(cString: dir)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path + "/" + name))
    }

    func read(_ name: String) throws -> String {
        String(decoding: try Data(contentsOf: URL(fileURLWithPath: path + "/" + name)), as: UTF8.self)
    }

    /// The permission bits of `file`.
    static func mode(_ file: String) throws -> Int {
        var info = stat()
        guard stat(file, &info) == 0 else { throw WireError("stat \(file): errno \(errno)") }
        return Int(info.st_mode & 0o7777)
    }
}

/// A `tollgate serve` run in a directory, its stderr collected until a line shows up, then stopped with SIGTERM.
final class ServeWatch {
    private let process = Process()
    private let errors = Pipe()

    init(_ arguments: [String], in directory: String) throws {
        process.executableURL = URL(fileURLWithPath: CLI.tollgate ?? CLI.expectedPath)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
    }

    private var collected = Data()

    /// Everything written to stderr so far once `text` has appeared `count` times, or once the process ended.
    func waitFor(_ text: String, count: Int = 1) -> String {
        while String(decoding: collected, as: UTF8.self).components(separatedBy: text).count - 1 < count {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            collected.append(chunk)
        }
        return String(decoding: collected, as: UTF8.self)
    }

    /// Sends `signal` to the server.
    func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// SIGTERM, then waits for the exit.
    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit { stop() }
}
