import CTollgate
import Glibc

/// Small questions about the host for `tollgate doctor`: a directory's entries, a symbolic link's target, a file
/// system's free space, whether the kernel thinks the clock is synchronized. Blocking (procfs and a statvfs are
/// quick, but a directory may be on a slow disk): never on an event loop.
public enum HostFiles {
    /// The names in a directory, "." and ".." left out, or nil when it cannot be opened.
    public static func directoryEntries(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // Read in place up to the NUL, as `ProcFS.openDescriptors` does (an entry may be shorter than d_name).
            let name = UnsafeRawPointer(entry) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            var bytes: [UInt8] = []
            var i = 0
            while i < 256 {
                let b = name.load(fromByteOffset: i, as: UInt8.self)
                if b == 0 { break }
                bytes.append(b)
                i += 1
            }
            if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
            names.append(String(decoding: bytes, as: UTF8.self))
        }
        return names
    }

    /// Where a symbolic link points ("socket:[12345]" for a socket in /proc/PID/fd), or nil.
    public static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buffer, 4096)
        guard n >= 0 else { return nil }
        buffer[n] = 0
        return String(cBuffer: buffer)
    }

    /// Bytes an unprivileged user may still write on the file system holding `path`, or nil.
    public static func freeBytes(_ path: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    /// Whether the kernel's clock discipline says the clock is synchronized (`adjtimex` answers anything but
    /// `TIME_ERROR`), as `timedatectl` decides NTPSynchronized; nil when the call fails.
    public static func clockSynchronized() -> Bool? {
        let state = tg_clock_state()
        guard state >= 0 else { return nil }
        return state != 5 // TIME_ERROR
    }
}
