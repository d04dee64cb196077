import Glibc
import Synchronization
import TollgateIO

/// An instance's persistent id in the fleet's quota balances (`SharedQuotaScript`'s members hash): kept in the state
/// directory, beside the usage ledger whose spending it stands for, so that a restarted instance is known as the
/// member whose spending the balances already hold, and adds nothing again.
///
/// The file is created only where it is missing: a file that cannot be read or holds no id stops the start (a new id
/// would add this server's ledger to the fleet's balances a second time). One running `tollgate serve` per state
/// directory (`StateLock`): a second process refuses to start there, so no two processes join as one member. Servers
/// within one process (as tests run them) share the directory's ledger and id: they are one member. A copy of the
/// directory running elsewhere (another machine, a restored backup) is seen by the join
/// (`SharedQuotas.Counters.memberConflicts`).
public enum FleetMember {
    /// The id's file in the state directory.
    static let fileName = "fleet-member-id"

    /// The ids this process read, by path (several servers in one process, as tests run them, read one file once).
    private static let known = Mutex<[String: String]>([:])

    /// A fresh random id: 16 hex digits.
    public static func random() -> String {
        let digits = Array("0123456789abcdef")
        return String(Syscall.randomBytes(8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// The id kept in `directory`, created (0600) when missing; a random id when there is no state directory (such an
    /// instance has no ledger either: its spending starts from zero at each start), or, with a warning, when the file
    /// cannot be created. Throws, naming the file, when it cannot be read or holds no id. Start-up only (file I/O).
    public static func id(stateDirectory directory: String?, warn: (String) -> Void) throws(SocketError) -> String {
        guard let directory else { return random() }
        let path = directory + "/" + fileName
        if let id = known.withLock({ $0[path] }) { return id }
        var fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 && errno == ENOENT {
            guard create(path, warn: warn) else { return random() }
            fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        }
        guard fd >= 0 else {
            throw SocketError("\(path): cannot open the fleet member id: \(Syscall.describe(errno)); fix it (a new id "
                              + "would add this server's spending to the fleet's quota balances a second time)",
                              code: errno)
        }
        defer { close(fd) }
        let id = try read(fd, path)
        known.withLock { $0[path] = id }
        return id
    }

    /// The id in the open file `fd` (`path`, for messages).
    private static func read(_ fd: Int32, _ path: String) throws(SocketError) -> String {
        var bytes = [UInt8](repeating: 0, count: 257)
        var count = 0
        reading: while count < bytes.count {
            switch Syscall.read(fd, into: &bytes, at: count, count: bytes.count - count) {
            case .bytes(let n): count += n
            case .eof, .wouldBlock: break reading
            case .failed(let e):
                throw SocketError("\(path): cannot read the fleet member id: \(Syscall.describe(e)); fix it (a new id "
                                  + "would add this server's spending to the fleet's quota balances a second time)",
                                  code: e)
            }
        }
        let text = String(String(decoding: bytes[0..<count], as: UTF8.self).filter { !$0.isWhitespace })
        guard !text.isEmpty, text.utf8.count <= 64,
              text.unicodeScalars.allSatisfy({ $0.properties.isASCIIHexDigit }) else {
            throw SocketError("\(path) does not hold a fleet member id (up to 64 hex digits); restore it, or remove it "
                              + "if this server's spending is not in the fleet's quota balances")
        }
        return text
    }

    /// Writes a new id to `path` if it is still missing (a file written meanwhile by another process is kept).
    /// False, with a warning, when it cannot be written.
    private static func create(_ path: String, warn: (String) -> Void) -> Bool {
        let temporary = path + ".tmp.\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            warn("cannot write \(temporary): \(Syscall.describe(errno)); this start's quota spending joins the fleet under a new id each start")
            return false
        }
        let failed = Syscall.writeAll(fd, Array((random() + "\n").utf8)) ?? (fsync(fd) == 0 ? nil : errno)
        close(fd)
        defer { unlink(temporary) }
        if let failed {
            warn("cannot write \(temporary): \(Syscall.describe(failed)); this start's quota spending joins the fleet under a new id each start")
            return false
        }
        // link(2) creates the name only where it is missing: two servers starting at once agree on one id.
        if link(temporary, path) != 0 && errno != EEXIST {
            warn("cannot create \(path): \(Syscall.describe(errno)); this start's quota spending joins the fleet under a new id each start")
            return false
        }
        return true
    }
}

/// This process in the fleet's quota balances: its nonce (one per start, shared by all its loops), whether the
/// member's entry in Redis is known to be its own (it joined, or took the entry of its previous start over), and
/// whether a conflict was reported already.
public final class FleetProcess: Sendable {
    /// This start's nonce.
    public let nonce: String
    private let state = Mutex<(claimed: Bool, conflictNoticed: Bool)>((false, false))

    /// A process with `nonce` (random by default).
    public init(nonce: String = FleetMember.random()) {
        self.nonce = nonce
    }

    /// This process.
    public static let current = FleetProcess()

    /// Whether the member's entry in Redis was made this process's own.
    public var claimed: Bool { state.withLock { $0.claimed } }

    /// The member's entry in Redis is this process's own now.
    func claim() { state.withLock { $0.claimed = true } }

    /// True the first time only: a conflict is reported once per process.
    func conflictNoticed() -> Bool {
        state.withLock { s in
            defer { s.conflictNoticed = true }
            return !s.conflictNoticed
        }
    }
}
