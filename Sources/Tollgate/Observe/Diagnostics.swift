import Glibc
import Synchronization

/// Status, warnings and errors on stderr, one line each, so stdout stays the access log.
///
/// On a terminal they read as text ("tollgate: warning: ..."); when stderr is not a terminal (journald, a log
/// shipper) and the access log is JSON, they are JSON lines of the same form: time, level, message.
public enum Diagnostics {
    private static let json = Atomic<Bool>(false)

    /// Chooses JSON lines when stderr is not a terminal and `structured` is asked for.
    public static func configure(structured: Bool) {
        json.store(structured && isatty(2) == 0, ordering: .relaxed)
    }

    public static func info(_ message: String) { emit("info", message) }
    public static func warn(_ message: String) { emit("warning", message) }
    public static func error(_ message: String) { emit("error", message) }

    private static func emit(_ level: String, _ message: String) {
        let line: String
        if json.load(ordering: .relaxed) {
            line = "{\"time\":\"\(AccessLog.timestamp())\",\"level\":\"\(level)\",\"message\":\(ErrorResponse.jsonString(message))}\n"
        } else {
            line = "tollgate: \(level == "info" ? "" : level + ": ")\(message)\n"
        }
        line.withCString { p in
            var offset = 0
            let count = strlen(p)
            while offset < count {
                let n = write(2, p + offset, count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
            }
        }
    }
}
