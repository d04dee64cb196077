import Foundation
import Glibc
@testable import Tollgate
import TollgateIO
import Testing

/// The fleet member id file: created only where it is missing, never replaced. Replacing an id silently (a file that
/// could not be read) made the fleet's quota balances count a server's spending twice.
@Suite struct FleetMemberTests {
    static func directory() throws -> String {
        let dir = NSTemporaryDirectory() + "tollgate-member-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func id(_ dir: String) throws(SocketError) -> String {
        try FleetMember.id(stateDirectory: dir) { Issue.record("warned: \($0)") }
    }

    @Test func aMissingIdIsCreatedPrivateAndKept() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = try Self.id(dir)
        #expect(id.count == 16 && id.allSatisfy(\.isHexDigit))
        let path = dir + "/fleet-member-id"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == id + "\n")
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try Self.id(dir) == id)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["fleet-member-id"])
    }

    @Test func aFileWithoutAnIdStopsTheStartAndIsKept() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/fleet-member-id"
        try "not an id\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect {
            try Self.id(dir)
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("does not hold a fleet member id")
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "not an id\n")
    }

    @Test func anUnreadableIdStopsTheStartAndIsKept() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/fleet-member-id"
        // A directory where the file should be: opened, but read fails (EISDIR) whoever runs the test.
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        #expect {
            try Self.id(dir)
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("cannot read")
        }
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR)
    }
}
