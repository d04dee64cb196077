/// One API key as the key table stores it: never the secret, only its hash.
public struct APIKey: Sendable, Equatable {
    /// The public id (`tg_<id>_…`).
    public var id: String
    /// The user it logs in as: a user of the users file (removed or disabled there, the key stops working).
    public var user: String
    /// A label for people (`--name`), may be empty.
    public var name: String
    /// `KeyHash.of` the whole token.
    public var hash: [UInt8]
    /// Creation time, seconds since the epoch.
    public var created: Int64
    /// When it stops working, seconds since the epoch (nil: never; the user's removal still ends it).
    public var expires: Int64?
    /// The models it may name, within its user's (empty: whatever its user may use).
    public var models: [String]
    /// When it was revoked (nil: not revoked).
    public var revoked: Int64?
    /// When it was last accepted, to the minute (written in batches, nil: never).
    public var lastUsed: Int64?

    /// Creates a record.
    public init(id: String, user: String, name: String = "", hash: [UInt8], created: Int64, expires: Int64? = nil,
                models: [String] = [], revoked: Int64? = nil, lastUsed: Int64? = nil) {
        self.id = id
        self.user = user
        self.name = name
        self.hash = hash
        self.created = created
        self.expires = expires
        self.models = models
        self.revoked = revoked
        self.lastUsed = lastUsed
    }
}
