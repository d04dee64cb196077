/// A user name and password as a client presented them, before any check.
public struct Credentials: Sendable, Equatable {
    /// The user name (valid UTF-8, no control characters).
    public var user: String
    /// The password bytes exactly as sent (may contain `:`); kept no longer than the check needs.
    public var password: [UInt8]

    /// Creates credentials.
    public init(user: String, password: [UInt8]) {
        self.user = user
        self.password = password
    }
}
