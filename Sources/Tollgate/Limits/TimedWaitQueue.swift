/// A process-wide queue of requests waiting for room (inference slots, backend leases): what the server's queue
/// sweepers and a waiter that gives up need of it, whatever it waits for. Taking a place stays with each
/// queue's own front (`SlotProvider`, `UpstreamPeers`), whose answers differ.
public protocol TimedWaitQueue: AnyObject, Sendable {
    /// Drops a waiter. False: it was granted meanwhile (its grant callback releases what it got).
    @discardableResult
    func cancel(ticket: UInt64) -> Bool
    /// Times out the waiters that waited the queue's whole timeout and calls their expiry callbacks (each hops to
    /// its own loop). Any thread; the server calls it every `sweepNanos` from each loop.
    func expire(nowMillis: UInt64)
}

extension TimedWaitQueue {
    /// How often the server sweeps its queues: a queue timeout is honoured to within a quarter second.
    public static var sweepNanos: UInt64 { 250_000_000 }
}

extension ConcurrencyLimiter: TimedWaitQueue {}
extension BackendSet: TimedWaitQueue {}
