/// An answer of a `SlotProvider`.
enum SlotAnswer {
    /// Go ahead; release the grant when the request ends.
    case granted(SlotGrant)
    /// Waiting under this ticket; the wait ends with `.waitOver`, `.expired` or `.unavailable`.
    case queued(ticket: UInt64)
    /// The queue is full: 429 with this Retry-After.
    case rejected(retryAfterSeconds: Int)
    /// The shared limits cannot answer and their fallback refuses: 503.
    case unavailable
    /// A queued request got its slot.
    case waitOver(SlotGrant)
    /// A queued request waited its whole time: 429.
    case expired
}
