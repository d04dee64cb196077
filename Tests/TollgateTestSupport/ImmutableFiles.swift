import Foundation

/// The immutable attribute (`chattr +i`): writes to such a file fail even for root, as on a file system remounted
/// read-only. Setting it needs CAP_LINUX_IMMUTABLE and a file system that has it (ext4, xfs, btrfs).
public enum ImmutableFiles {
    public static let available: Bool = {
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-immutable-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard FileManager.default.createFile(atPath: probe, contents: Data()) else { return false }
        guard (try? set([probe], true)) != nil else { return false }
        let writable = FileManager.default.isWritableFile(atPath: probe) && (try? Data().write(to: URL(fileURLWithPath: probe))) != nil
        try? set([probe], false)
        return !writable
    }()

    public struct Failed: Error { public let status: Int32 }

    public static func set(_ paths: [String], _ on: Bool) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
        process.arguments = [on ? "+i" : "-i"] + paths
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Failed(status: process.terminationStatus) }
    }
}
