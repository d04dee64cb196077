import Glibc

/// Status, warnings and errors on stderr, one line each, so stdout stays the access log.
public enum Diagnostics {
    public static func info(_ message: String) { emit("", message) }
    public static func warn(_ message: String) { emit("warning: ", message) }
    public static func error(_ message: String) { emit("error: ", message) }

    private static func emit(_ level: String, _ message: String) {
        let line = "tollgate: \(level)\(message)\n"
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
