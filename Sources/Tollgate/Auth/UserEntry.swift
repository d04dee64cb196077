/// One `user:hash` line of a users file.
public struct UserEntry: Sendable, Equatable {
    /// The user name (no colon, whitespace or control characters).
    public var name: String
    /// The stored hash exactly as written (format prefix included).
    public var hash: String
    /// The hash's format, recognised at load.
    public var format: HashFormat
    /// The 1-based line number, for messages.
    public var line: Int

    /// Creates an entry; `UsersFile.parse` is the usual source.
    public init(name: String, hash: String, format: HashFormat, line: Int) {
        self.name = name
        self.hash = hash
        self.format = format
        self.line = line
    }
}
