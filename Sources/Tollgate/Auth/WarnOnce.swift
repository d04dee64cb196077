import Synchronization

/// Remembers which users-file warnings were already logged, so that a weak hash or an unusable line is reported
/// once per process (per file and line content), not again at every reload. Thread-safe.
public final class WarnOnce: Sendable {
    /// The one the server and the command line share.
    public static let process = WarnOnce()

    /// Distinct warnings remembered at most; past it the memory starts over (and old warnings may repeat once).
    public let capacity: Int
    private let seen = Mutex<Set<[UInt8]>>([])

    /// An empty memory of `capacity` warnings.
    public init(capacity: Int = 65_536) {
        self.capacity = max(1, capacity)
    }

    /// The warnings among `warnings` not reported before, in order; remembers them as reported.
    public func fresh(_ warnings: [UsersFileWarning]) -> [UsersFileWarning] {
        seen.withLock { seen in
            warnings.filter { warning in
                if seen.contains(warning.key) { return false }
                if seen.count >= capacity { seen.removeAll() }
                seen.insert(warning.key)
                return true
            }
        }
    }
}
