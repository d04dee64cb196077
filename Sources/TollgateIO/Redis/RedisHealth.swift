/// Whether a `RedisClient` can take commands now.
public enum RedisHealth: Sendable, Equatable {
    /// The first connection is being made; commands queue until it is up (or fails).
    case connecting
    /// Connected, `AUTH`/`SELECT` done: commands are sent at once.
    case up
    /// The last connection failed or timed out; reconnecting with backoff. Commands fail at once with
    /// `RedisError.notConnected` until a connection is up again.
    case down
}
