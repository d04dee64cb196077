import Glibc

/// What identifies one version of a file cheaply: inode, size and modification time.
struct FileSignature: Equatable {
    var inode: UInt64
    var size: Int64
    var seconds: Int
    var nanos: Int

    /// The signature of `path` (following symlinks), or nil when it cannot be stat'ed.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        seconds = info.st_mtim.tv_sec
        nanos = info.st_mtim.tv_nsec
    }
}
