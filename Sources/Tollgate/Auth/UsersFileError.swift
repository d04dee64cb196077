/// Why a users file could not be used, naming the file and (when there is one) the line:
/// `users.htpasswd:7: duplicate user "bob" (first on line 3)`.
///
/// At start-up it is a start-up error; on reload the previous users stay in force.
public struct UsersFileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file's path as configured.
    public var path: String
    /// The 1-based line, or nil for whole-file problems (unreadable, too large).
    public var line: Int?
    /// What is wrong, without the path and line.
    public var message: String
    /// The file does not exist (deleted, or not yet created): `authorized-keys` then means no keys at all.
    public var missing = false

    /// Creates an error about `path` (and `line`).
    public init(path: String, line: Int? = nil, _ message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    /// Equal when they say the same thing (`missing` is how the message came about, not part of it).
    public static func == (a: UsersFileError, b: UsersFileError) -> Bool {
        a.path == b.path && a.line == b.line && a.message == b.message
    }

    /// `path:line: message`, or `path: message` without a line.
    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}
