import TollgateIO

/// One `ssh-ed25519 KEY USER` line of an `authorized-keys` file: an `ollama` CLI key and the user it logs in as.
public struct AuthorizedKey: Sendable {
    /// The Tollgate user the key logs in as (its policies, admin rights and limits apply).
    public var user: String
    /// The key, ready for verification.
    public var key: Ed25519PublicKey
    /// `SHA256:…` as `ssh-keygen -l` prints it: what the access log names.
    public var fingerprint: String
    /// The 1-based line, for messages.
    public var line: Int

    /// Creates an entry; `AuthorizedKeys.parse` is the usual source.
    public init(user: String, key: Ed25519PublicKey, fingerprint: String, line: Int) {
        self.user = user
        self.key = key
        self.fingerprint = fingerprint
        self.line = line
    }
}
