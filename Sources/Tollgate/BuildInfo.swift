import TollgateIO

/// What this binary is: its version, and the OpenSSL it runs with (for `tollgate --version` and the
/// `tollgate_build_info` metric).
public enum BuildInfo {
    /// Tollgate's version.
    public static let version = "0.3.0"

    /// The Swift language mode's compiler generation this binary was built with.
    public static let swift: String = {
        #if compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }()

    /// The OpenSSL library loaded at run time, e.g. "OpenSSL 3.0.17 1 Jul 2025".
    public static var openSSL: String { TLSContext.openSSLVersion }

    /// One line for `--version`.
    public static var line: String { "tollgate \(version) (Swift \(swift), \(openSSL))" }
}
