/// Something to tell the admin about one line of a users file: a weak hash format, or a line that disables its
/// user (or is skipped) because Tollgate cannot use it. `users.htpasswd:7: user "bob" uses $1$ (MD5-crypt); ...`.
public struct UsersFileWarning: Sendable, Equatable, CustomStringConvertible {
    /// The file's path as configured.
    public var path: String
    /// The 1-based line.
    public var line: Int
    /// What is wrong, without the path and line.
    public var message: String
    /// Identifies the warning by file, kind and line content (not line number), so that `WarnOnce` reports it once
    /// per process however often the file is reloaded: a SHA-256 digest, so no hash or `{PLAIN}` password is kept.
    public var key: [UInt8]

    /// Creates a warning; `key` should digest the path, the kind of warning and the line's content.
    public init(path: String, line: Int, _ message: String, key: [UInt8]) {
        self.path = path
        self.line = line
        self.message = message
        self.key = key
    }

    /// `path:line: message`.
    public var description: String { "\(path):\(line): \(message)" }
}
