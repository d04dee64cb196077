/// What an accepted key allows: its user, narrowed to its models.
public struct KeyGrant: Sendable, Equatable {
    /// The key's id (logged; never its secret).
    public var id: String
    /// The user it logs in as.
    public var user: String
    /// The models it may name (nil: whatever its user may use); the model gate intersects them with the user's.
    public var models: Set<String>?

    /// Creates a grant.
    public init(id: String, user: String, models: Set<String>?) {
        self.id = id
        self.user = user
        self.models = models
    }
}

/// What the key ring made of a presented key. Revoked and expired are told only to whoever holds the right
/// secret; anyone else learns nothing but "wrong key".
public enum KeyVerdict: Sendable, Equatable {
    /// Right secret, in force.
    case valid(KeyGrant)
    /// No key has this id.
    case unknown
    /// The id exists, the secret is wrong.
    case wrongSecret(user: String)
    /// Right secret, revoked.
    case revoked(user: String)
    /// Right secret, past its expiry.
    case expired(user: String)
}
