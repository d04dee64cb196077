import Glibc
import Testing
@testable import Tollgate

@Suite struct AuthUsersFileWatcherTests {
    /// Writes `text` into `path` in place (truncate and rewrite the same inode), as htpasswd does.
    private func rewrite(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o640)
        precondition(fd >= 0, "open \(path)")
        let bytes = Array(text.utf8)
        let written = write(fd, bytes, bytes.count)
        close(fd)
        precondition(written == bytes.count)
    }

    private func hash(of user: String, in result: Result<UsersFile, UsersFileError>) -> String? {
        guard case .success(let users) = result else { return nil }
        return users.entries[user]?.hash
    }

    private func isFailure(_ result: Result<UsersFile, UsersFileError>, containing text: String) -> Bool {
        guard case .failure(let error) = result else { return false }
        return error.description.contains(text)
    }

    private func start(_ initial: String) throws -> (String, UsersFileWatcher, Inbox<Result<UsersFile, UsersFileError>>) {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/users.htpasswd"
        rewrite(path, initial)
        let inbox = Inbox<Result<UsersFile, UsersFileError>>()
        let watcher = try UsersFileWatcher(path: path) { inbox.put($0) }
        return (path, watcher, inbox)
    }

    @Test func seesAnInPlaceRewrite() throws {
        let (path, watcher, inbox) = try start("alice:{PLAIN}one\n")
        defer { watcher.stop() }
        rewrite(path, "alice:{PLAIN}two\n")
        #expect(inbox.first { hash(of: "alice", in: $0) == "{PLAIN}two" } != nil)
        rewrite(path, "alice:{PLAIN}two\nbob:{PLAIN}three\n")
        #expect(inbox.first { hash(of: "bob", in: $0) == "{PLAIN}three" } != nil)
    }

    @Test func seesARenameReplace() throws {
        let (path, watcher, inbox) = try start("alice:{PLAIN}one\n")
        defer { watcher.stop() }
        rewrite(path + ".tmp", "alice:{PLAIN}renamed\n")
        #expect(rename(path + ".tmp", path) == 0)
        #expect(inbox.first { hash(of: "alice", in: $0) == "{PLAIN}renamed" } != nil)
    }

    @Test func seesDeleteThenRecreate() throws {
        let (path, watcher, inbox) = try start("alice:{PLAIN}one\n")
        defer { watcher.stop() }
        #expect(unlink(path) == 0)
        #expect(inbox.first { isFailure($0, containing: "cannot open") } != nil)
        rewrite(path, "alice:{PLAIN}recreated\n")
        #expect(inbox.first { hash(of: "alice", in: $0) == "{PLAIN}recreated" } != nil)
    }

    @Test func anEditAddingAnUnusableLineDisablesOnlyThatUser() throws {
        let (path, watcher, inbox) = try start("alice:{PLAIN}one\n")
        defer { watcher.stop() }
        rewrite(path, "alice:{PLAIN}one\nbob\ncarol:not-a-hash\ndave:{PLAIN}four\n")
        let reloaded = inbox.first { hash(of: "dave", in: $0) == "{PLAIN}four" }
        guard case .success(let users)? = reloaded else {
            Issue.record("the edit was never reported")
            return
        }
        #expect(users.entries.keys.sorted() == ["alice", "dave"])
        #expect(users.disabled.map(\.line) == [2, 3])
        let warnings = users.warnings.map(\.description)
        #expect(warnings.contains("\(path):2: malformed line (expected user:hash); line ignored"), "\(warnings)")
        #expect(warnings.contains { $0.hasPrefix("\(path):3: user \"carol\" cannot log in: unknown hash format") }, "\(warnings)")
    }

    @Test func anUnreadableFileIsReportedAsAFailure() throws {
        let (path, watcher, inbox) = try start("alice:{PLAIN}one\n")
        defer { watcher.stop() }
        #expect(unlink(path) == 0)
        #expect(mkdir(path, 0o700) == 0)
        let failure = inbox.first { isFailure($0, containing: "not a regular file") }
        #expect(failure != nil, "no failure reported")
    }

    @Test func reloadNowReportsEvenWithoutChanges() throws {
        let (_, watcher, inbox) = try start("alice:{PLAIN}one\n")
        watcher.reloadNow()
        #expect(inbox.first { hash(of: "alice", in: $0) == "{PLAIN}one" } != nil)
        watcher.stop()
        watcher.stop()
    }

    @Test func aMissingDirectoryIsAnError() {
        #expect(throws: UsersFileError.self) {
            try UsersFileWatcher(path: "/nonexistent-tollgate-dir/users.htpasswd") { _ in }
        }
    }
}
