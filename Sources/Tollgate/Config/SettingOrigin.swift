/// Where a resolved setting's value came from, in precedence order: flag, environment, file, default.
public enum SettingOrigin: Sendable, Equatable {
    /// A command-line flag (`--name`).
    case flag
    /// The named environment variable (`TOLLGATE_NAME`).
    case environment(String)
    /// The config file and the (first) line that set it.
    case file(path: String, line: Int)
    /// The built-in default (or not set at all, when the setting has none).
    case `default`

    /// "--burst", "TOLLGATE_BURST", "/etc/tollgate/tollgate.conf:12" or "default", for `setting`.
    public func describe(setting name: String) -> String {
        switch self {
        case .flag: return "--\(name)"
        case .environment(let variable): return variable
        case .file(let path, let line): return "\(path):\(line)"
        case .default: return "default"
        }
    }
}
