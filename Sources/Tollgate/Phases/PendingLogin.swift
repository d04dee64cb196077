/// Credentials read from a request, waiting for their password check: set by `CredentialHeaders`, adjusted by
/// `LoginThrottling`, taken (and so dropped) by `Authentication`.
struct PendingLogin {
    var credentials: Credentials
    /// The client's address as text: the login throttle's key.
    var clientIP: String
    /// Whether the check applies this process's failed-login throttle (false when the fleet-wide one decided).
    var throttle = true
    /// A login with an `ollama` key (the signed form) instead of a password: the request as signed. `credentials`
    /// then names the key's user (the fingerprint for an unlisted key) with no password, for the throttle; the
    /// key itself is looked up again when it is checked (`SignedLogins.check`).
    var signed: SignedRequest?
    /// An API key login: the key and the user part of `user:key` (`credentials` then holds the user the throttle
    /// counts under and no password).
    var key: (token: APIKeyToken, claimedUser: String?)?
}
