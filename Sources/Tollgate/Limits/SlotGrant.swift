/// What a request holds while it runs.
enum SlotGrant: Equatable {
    /// A fleet-wide lease.
    case lease(SharedLeases.Lease)
    /// A slot of this process's limiter.
    case local(ConcurrencyLimiter.Slot)
    /// Nothing: admitted while the shared limits could not answer (`open` fallback).
    case open
}
