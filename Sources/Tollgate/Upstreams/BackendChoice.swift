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
