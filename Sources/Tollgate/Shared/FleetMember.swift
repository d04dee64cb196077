import Glibc
import TollgateIO

/// An instance's persistent id in the fleet's quota balances (`SharedQuotaScript`'s members set): kept in the state
/// directory, beside the usage ledger whose spending it stands for, so that a restarted instance is known as the
/// member whose spending the balances already hold, and adds nothing again.
public enum FleetMember {
    /// The id's file in the state directory.
    static let fileName = "fleet-member-id"

    /// A fresh random id: 16 hex digits.
    static func random() -> String {
        let digits = Array("0123456789abcdef")
        return String(Syscall.randomBytes(8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// The id kept in `directory` (created, 0600, when missing), or a random one and a warning when it cannot be read
    /// or written, or when there is no state directory: such an instance has no ledger either, so its spending
    /// starts from zero at each start, and a new id adds only what it spends from then on. Start-up only (file I/O).
    public static func id(stateDirectory directory: String?, warn: (String) -> Void) -> String {
        guard let directory else { return random() }
        let path = directory + "/" + fileName
        if case .success(let bytes) = Syscall.readWholeFile(path, limit: 256) {
            let text = String(String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace })
            if !text.isEmpty && text.utf8.count <= 64 && text.unicodeScalars.allSatisfy({ $0.properties.isASCIIHexDigit }) {
                return text
            }
            warn("\(path) does not hold a fleet member id (hex digits); writing a new one")
        }
        let id = random()
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            warn("cannot write \(temporary): \(Syscall.describe(errno)); this start's quota spending joins the fleet under a new id each start")
            return id
        }
        let failed = Syscall.writeAll(fd, Array((id + "\n").utf8)) ?? (fsync(fd) == 0 ? nil : errno)
        close(fd)
        if let failed {
            unlink(temporary)
            warn("cannot write \(temporary): \(Syscall.describe(failed)); this start's quota spending joins the fleet under a new id each start")
            return id
        }
        if rename(temporary, path) != 0 {
            warn("cannot rename \(temporary) to \(path): \(Syscall.describe(errno))")
            unlink(temporary)
        }
        return id
    }
}
