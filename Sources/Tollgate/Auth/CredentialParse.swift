/// What a request's authentication headers amount to.
public enum CredentialParse: Sendable, Equatable {
    /// No `Authorization` and no `x-api-key` header at all.
    case none
    /// A header was present but unusable (unknown scheme, bad base64, no colon, ...): answer 401. The reason is
    /// for logs only; it never contains the password.
    case malformed(String)
    /// Usable credentials and where they came from.
    case found(Credentials, CredentialSource)
    /// The `ollama` CLI's signed form (`OLLAMA_AUTH`): a public key and its signature, checked against
    /// `authorized-keys` (see `SignedLogins`).
    case signed(SignedCredential)
    /// An API key, alone (`claimedUser` nil) or as the password of `user:key`, and where it came from.
    case key(APIKeyToken, claimedUser: String?, CredentialSource)
}
