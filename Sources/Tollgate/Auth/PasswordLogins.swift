/// Where a password is still accepted next to API keys (the `password-logins` setting).
public enum PasswordLogins: String, Sendable, CaseIterable {
    /// `user:password` in Basic, Bearer and x-api-key alike (the default: nothing changes for existing clients).
    case everywhere
    /// Only in Basic (curl, browsers); Bearer and x-api-key then carry API keys only, so an SDK config or a chat
    /// UI never holds a login.
    case basic
    /// Nowhere: API keys only.
    case nowhere

    /// Whether a password that came in `source` is accepted.
    public func accepts(_ source: CredentialSource) -> Bool {
        switch self {
        case .everywhere: return true
        case .basic: return source == .basic
        case .nowhere: return false
        }
    }
}
