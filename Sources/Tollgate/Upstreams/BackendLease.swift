/// A request's hold on one backend: give it back with `BackendSet.release` when the request ends or moves on.
public struct BackendLease: Sendable, Hashable {
    /// The backend's index in the configured order.
    public let backend: Int
    /// Whether it counts against the backend's max (inference routes).
    public let counted: Bool
    /// Unique per set, so a double release is harmless.
    let id: UInt64
}
