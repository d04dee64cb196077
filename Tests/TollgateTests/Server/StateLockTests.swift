import Foundation
import Glibc
import Testing
import Tollgate
import TollgateIO

/// The state directory's lock: shared by every holder in this process (servers included), refused while another
/// open of the file (as another process would hold it) has it, never taken through a link.
@Suite(.serialized) struct StateLockTests {
    /// A fresh temporary directory (each test removes it).
    static func directory() throws -> String {
        var template = Array("/tmp/tollgate-statelock-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: try #require(made))
    }

    /// Whether another open file description (another process's, to the kernel) could take the lock in `directory`
    /// now; it lets go at once.
    static func othersCanLock(_ directory: String) throws -> Bool {
        let fd = open(directory + "/" + StateLock.fileName, O_RDWR | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) == 0
    }

    static func text(_ path: String) -> String {
        guard case .success(let bytes) = Syscall.readWholeFile(path, limit: 4096) else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func holdersInOneProcessShareTheLockUntilTheLastLetsGo() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var first: StateLock? = try StateLock.acquire(directory: dir + "/state")
        // Another spelling of the same directory shares it too (the file is recognised, not the path).
        var second: StateLock? = try StateLock.acquire(directory: dir + "/./state/")
        #expect(StateLock.holders(of: dir + "/state") == 2)
        #expect(Self.text(dir + "/state/" + StateLock.fileName) == "\(getpid())\n")
        var info = stat()
        #expect(stat(dir + "/state/" + StateLock.fileName, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(stat(dir + "/state", &info) == 0 && info.st_mode & 0o777 == 0o700, "the directory is created 0700")
        #expect(try !Self.othersCanLock(dir + "/state"))
        first = nil
        #expect(StateLock.holders(of: dir + "/state") == 1)
        #expect(try !Self.othersCanLock(dir + "/state"), "released while a holder was left")
        second = nil
        #expect(StateLock.holders(of: dir + "/state") == 0)
        #expect(try Self.othersCanLock(dir + "/state"))
        #expect(Self.text(dir + "/state/" + StateLock.fileName) == "", "a released lock still names this process")
        _ = (first, second)
    }

    @Test func aLockHeldElsewhereIsRefusedNamingItsPid() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fd = open(dir + "/" + StateLock.fileName, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        #expect(Syscall.writeAll(fd, Array("4242\n".utf8)) == nil)
        #expect(throws: StateLockError.held(directory: dir, pid: 4242)) { try StateLock.acquire(directory: dir) }
        #expect(StateLockError.held(directory: dir, pid: 4242).description == "state directory \(dir) is in use by "
                + "another running tollgate serve (pid 4242); give each server its own state-dir")
        #expect(StateLock.holders(of: dir) == 0)
        #expect(Self.text(dir + "/" + StateLock.fileName) == "4242\n", "the holder's pid was overwritten")
        // Once it lets go, the next start takes the lock.
        #expect(flock(fd, LOCK_UN) == 0)
        let lock = try StateLock.acquire(directory: dir)
        #expect(lock.directory == dir)
        #expect(Self.text(dir + "/" + StateLock.fileName) == "\(getpid())\n")
    }

    @Test func aLinkInPlaceOfTheLockFileIsRefusedNeverFollowed() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/elsewhere"
        let fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        try #require(fd >= 0)
        #expect(Syscall.writeAll(fd, Array("keep\n".utf8)) == nil)
        close(fd)
        #expect(symlink(target, dir + "/" + StateLock.fileName) == 0)
        #expect(throws: StateLockError.unusable("\(dir)/\(StateLock.fileName) is a link: remove it (the lock file is "
                                                + "never followed)")) { try StateLock.acquire(directory: dir) }
        // A hard link to another file is refused too (it would be truncated).
        #expect(unlink(dir + "/" + StateLock.fileName) == 0)
        #expect(link(target, dir + "/" + StateLock.fileName) == 0)
        #expect(throws: StateLockError.self) { try StateLock.acquire(directory: dir) }
        #expect(Self.text(target) == "keep\n")
    }

    @Test(.enabled(if: geteuid() == 0, "root only: a directory given to another user"))
    func aDirectoryOfAnotherUserIsRefused() throws {
        // Root in the service user's directory would leave a database the service cannot open; any user in another's
        // directory would let its owner move the lock aside or plant a fleet member id.
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(chown(dir, 65534, 65534) == 0)
        do {
            _ = try StateLock.acquire(directory: dir)
            Issue.record("locked a directory of another user")
        } catch {
            #expect(error.description.contains("belongs to uid 65534, not to uid 0"), "\(error)")
        }
        #expect(access(dir + "/" + StateLock.fileName, F_OK) != 0, "nothing made in it")
    }

    @Test func aDirectoryOthersMayWriteToIsRefused() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for mode: mode_t in [0o777, 0o770, 0o1777] {
            #expect(chmod(dir, mode) == 0)
            do {
                _ = try StateLock.acquire(directory: dir)
                Issue.record("locked a directory of mode \(String(mode, radix: 8))")
            } catch {
                #expect(error.description.contains("may be written by other users"), "\(error)")
            }
        }
        #expect(chmod(dir, 0o755) == 0)
        #expect(try StateLock.acquire(directory: dir).directory == dir)
    }

    @Test func aLockFileThatCannotBeMadeStopsAServerOnlyWhenItsLedgerIsOn() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let database = dir + "/missing/state/" + StateDatabase.fileName
        var warnings: [String] = []
        #expect(try StateLock.forServer(databasePath: database, required: false) { warnings.append($0) } == nil)
        #expect(warnings.allSatisfy { $0.contains("cannot create the state directory \(dir)/missing/state") })
        #expect(throws: SocketError.self) {
            _ = try StateLock.forServer(databasePath: database, required: true) { warnings.append($0) }
        }
        #expect(warnings.count <= 1, "said more than once: \(warnings)")
    }

    @Test func serversOnOneStateDirectoryInOneProcessShareItsLock() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = Self.serverConfig(ledgerIn: dir + "/state")
        do {
            let a = try Server(config: config)
            defer { a.shutdown(graceSeconds: 0) }
            let b = try Server(config: config)
            defer { b.shutdown(graceSeconds: 0) }
            #expect(a.stateLock != nil && b.stateLock != nil)
            #expect(StateLock.holders(of: dir + "/state") == 2)
            #expect(try !Self.othersCanLock(dir + "/state"))
        }
        #expect(StateLock.holders(of: dir + "/state") == 0, "the servers' lock outlived them")
        #expect(try Self.othersCanLock(dir + "/state"))
    }

    @Test func aServerOnADirectoryHeldElsewhereIsRefusedBeforeItBinds() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkdir(dir + "/state", 0o700) == 0)
        let fd = open(dir + "/state/" + StateLock.fileName, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        #expect(Syscall.writeAll(fd, Array("4242\n".utf8)) == nil)
        let config = Self.serverConfig(ledgerIn: dir + "/state")
        #expect {
            _ = try Server(config: config)
        } throws: { error in
            (error as? SocketError)?.description == StateLockError.held(directory: dir + "/state", pid: 4242).description
        }
        #expect(access(dir + "/state/" + StateDatabase.fileName, F_OK) != 0, "the refused server opened the ledger")
    }

    /// A one-worker plain-listener server whose ledger is in `directory`.
    static func serverConfig(ledgerIn directory: String) -> ServerConfig {
        var config = ServerConfig()
        config.listen = []
        config.listenPlain = [SocketAddress(parsing: "127.0.0.1:0")!]
        config.workers = 1
        config.accessLog = .none
        config.metricsListen = []
        config.ledgerEnabled = true
        config.databasePath = StateDatabase.path(in: directory)
        return config
    }
}
