import Glibc

/// What the kernel says about this process, for the `process_*` metrics Prometheus client libraries export: the
/// text of `/proc/self/stat`, the entries of `/proc/self/fd`, the open-files limit and the boot time.
///
/// Each read is one small file or directory in procfs, answered from kernel memory without waiting on a disk, so a
/// metrics scrape may make them on its loop (nginx's stub_status and Prometheus's own clients do the same).
public enum ProcFS {
    /// The contents of `/proc/self/stat`, or nil where there is no procfs.
    public static func selfStat() -> [UInt8]? {
        readSmall("/proc/self/stat")
    }

    /// Descriptors open now: the entries of `/proc/self/fd` (the one that lists them included, as Prometheus's
    /// Go client counts them), or nil where there is no procfs.
    public static func openDescriptors() -> Int? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            // The name is read in place, byte by byte up to its NUL: an entry may be shorter than `d_name`'s
            // declared 256 bytes and end at a page boundary, so copying the whole field could read past it.
            let name = UnsafeRawPointer(entry) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            func byte(_ i: Int) -> UInt8 { name.load(fromByteOffset: i, as: UInt8.self) }
            let isDot = byte(0) == 0x2E && (byte(1) == 0 || (byte(1) == 0x2E && byte(2) == 0))
            if !isDot { count += 1 }
        }
        return count
    }

    /// The soft limit on open descriptors (what `/proc/self/limits` shows as "Max open files"); nil when unlimited
    /// or unknown.
    public static func descriptorLimit() -> UInt64? {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0, rl.rlim_cur != rlim_t.max else { return nil }
        return UInt64(rl.rlim_cur)
    }

    /// Clock ticks per second, the unit of the times in `/proc/self/stat`.
    public static let clockTicks: Int = max(1, sysconf(Int32(_SC_CLK_TCK)))

    /// Bytes per page, the unit of the resident set size in `/proc/self/stat`.
    public static let pageSize: Int = max(1, sysconf(Int32(_SC_PAGESIZE)))

    /// When the system booted, in seconds since the epoch (`btime` in `/proc/stat`); read once.
    public static let bootTime: Int? = {
        guard case .success(let bytes) = Syscall.readWholeFile("/proc/stat", limit: 4 << 20) else { return nil }
        for line in bytes.split(separator: 0x0A) where line.starts(with: Array("btime ".utf8)) {
            return Int(String(decoding: line.dropFirst(6), as: UTF8.self))
        }
        return nil
    }()

    /// A procfs file of at most a few KiB, read with one buffer and no stat.
    private static func readSmall(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Syscall.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var used = 0
        while used < buffer.count {
            switch Syscall.read(fd, into: &buffer, at: used, count: buffer.count - used) {
            case .bytes(let n): used += n
            case .eof: return Array(buffer[0..<used])
            case .wouldBlock, .failed: return nil
            }
        }
        return Array(buffer[0..<used])
    }
}
