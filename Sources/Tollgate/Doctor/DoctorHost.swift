import Glibc
import TollgateIO

/// Everything `tollgate doctor` asks the host, in one place, so that tests answer from a fake /proc tree, canned
/// command outputs and a fake Ollama, and never depend on the machine they run on.
public protocol DoctorHost: Sendable {
    /// Where procfs is mounted ("/proc"; a temporary folder in tests): `net/tcp`, `net/tcp6`, `meminfo`,
    /// `PID/fd/`, `PID/comm` are read under it.
    var procRoot: String { get }
    /// Now, in seconds since the epoch.
    func now() -> Int64
    /// The effective user id (0: root, who may read every process's descriptors and ask the firewall).
    func userID() -> UInt32
    /// A file's contents (at most a few MiB), or nil when it cannot be read.
    func readFile(_ path: String) -> [UInt8]?
    /// Whether a file exists.
    func exists(_ path: String) -> Bool
    /// The names in a directory, or nil.
    func directoryEntries(_ path: String) -> [String]?
    /// A symbolic link's target, or nil.
    func readLink(_ path: String) -> String?
    /// Free bytes on the file system holding `path`, or nil.
    func freeBytes(_ path: String) -> UInt64?
    /// Whether the kernel says the clock is synchronized; nil when unknown.
    func clockSynchronized() -> Bool?
    /// Runs a command; nil when it is not installed.
    func run(_ arguments: [String]) -> ChildProcess.Output?
    /// `GET path` from an Ollama at `address`, sending `host` as Host, giving up after `timeoutMillis`.
    func fetch(_ address: SocketAddress, host: String, path: String, timeoutMillis: Int32) -> HTTPFetch.Result
    /// Verifies a certificate file's chain (see `TLSCertificate.verifyChain`).
    func verifyChain(_ certificate: TLSCertificate, caFile: String?, at time: Int64) -> CertificateChainVerdict
}

/// The real host: procfs at /proc, real commands, real sockets.
public struct SystemDoctorHost: DoctorHost {
    /// Where procfs is mounted.
    public let procRoot: String
    /// Commands are killed after this long.
    public var commandTimeoutMillis: Int32

    /// The host this process runs on.
    public init(procRoot: String = "/proc", commandTimeoutMillis: Int32 = 5000) {
        self.procRoot = procRoot
        self.commandTimeoutMillis = commandTimeoutMillis
    }

    // The protocol's requirements, each answered by the real call.
    public func now() -> Int64 { Int64(time(nil)) }
    public func userID() -> UInt32 { geteuid() }
    public func readFile(_ path: String) -> [UInt8]? {
        if case .success(let bytes) = Syscall.readWholeFile(path, limit: 16 << 20) { return bytes }
        return nil
    }
    public func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
    public func directoryEntries(_ path: String) -> [String]? { HostFiles.directoryEntries(path) }
    public func readLink(_ path: String) -> String? { HostFiles.readLink(path) }
    public func freeBytes(_ path: String) -> UInt64? { HostFiles.freeBytes(path) }
    public func clockSynchronized() -> Bool? { HostFiles.clockSynchronized() }
    public func run(_ arguments: [String]) -> ChildProcess.Output? {
        ChildProcess.run(arguments, timeoutMillis: commandTimeoutMillis)
    }
    public func fetch(_ address: SocketAddress, host: String, path: String, timeoutMillis: Int32) -> HTTPFetch.Result {
        HTTPFetch.get(address, host: host, path: path, timeoutMillis: timeoutMillis)
    }
    public func verifyChain(_ certificate: TLSCertificate, caFile: String?, at time: Int64) -> CertificateChainVerdict {
        certificate.verifyChain(caFile: caFile, at: time)
    }
}
