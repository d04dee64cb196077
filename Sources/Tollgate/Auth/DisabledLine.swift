/// A users-file line Tollgate cannot use: a hash it cannot verify, a malformed line, or one of a user's duplicate
/// lines. Its user (when the line names one) cannot log in; every other user is unaffected.
public struct DisabledLine: Sendable, Equatable {
    /// The 1-based line.
    public var line: Int
    /// The user the line names, or nil when it names none (no colon, an invalid name).
    public var user: String?
    /// Why, as in the warning ("unknown hash format", "duplicate of line 3").
    public var reason: String

    /// Creates a record of a disabled line.
    public init(line: Int, user: String?, reason: String) {
        self.line = line
        self.user = user
        self.reason = reason
    }
}
