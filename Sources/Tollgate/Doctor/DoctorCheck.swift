/// One line of `tollgate doctor`'s checklist: what was checked, how it came out, what was found and, when it is
/// not fine, what to do about it.
public struct DoctorCheck: Sendable, Equatable {
    /// How a check came out.
    public enum Status: String, Sendable, Equatable {
        /// Fine.
        case ok
        /// Works, but worth a look (a weak hash, a certificate expiring within 30 days, no firewall).
        case warn
        /// Broken or dangerous: `doctor` exits 1.
        case fail
        /// Not applicable here or not visible to this user (no ufw installed, not root).
        case skip

        /// The mark printed before the line.
        public var mark: String {
            switch self {
            case .ok: return "✓"
            case .warn: return "!"
            case .fail: return "✗"
            case .skip: return "-"
            }
        }
    }

    /// A short, stable name ("certificate", "ollama exposure"): what the line is about, and the `--json` key.
    public var name: String
    /// How it came out.
    public var status: Status
    /// What was found, one line.
    public var detail: String
    /// What to do about it, printed under a warning or failure; nil when there is nothing to do.
    public var fix: String?

    /// A check's outcome.
    public init(_ name: String, _ status: Status, _ detail: String, fix: String? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix
    }
}
