/// The outcome of asking the backend set for a backend.
public enum BackendChoice: Sendable {
    /// Use this backend; release the lease when done.
    case acquired(BackendLease)
    /// Every suitable backend is at its max: wait. Exactly one of the waiter's callbacks will run, unless
    /// `cancel(ticket:)` removes it first.
    case queued(ticket: UInt64)
    /// No healthy backend has the model (and every healthy one's catalog is known): 404 as Ollama says it.
    case noModel
    /// No healthy backend is left (all ejected, or all tried by this request).
    case unavailable
    /// The wait queue is full: 429 with this Retry-After.
    case rejected(retryAfterSeconds: Int)
}

/// A change of a backend's health worth one log line.
public enum BackendHealthEvent: Sendable, Equatable {
    /// It failed `health-fails` times in a row and gets no new requests.
    case ejected(name: String, failures: Int)
    /// A check succeeded after an ejection.
    case recovered(name: String)
}
