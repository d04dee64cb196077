import Glibc

/// A file's identity, however it is named: its device and inode. The state lock is one per file; the status page's
/// reader opens the ledger again when its path names another file.
struct FileID: Hashable {
    var device: UInt64
    var inode: UInt64

    /// The identity of what `info` describes.
    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    /// The identity of the file `path` names now (following links); nil when it names nothing.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }
}
