import Synchronization

/// Requests waiting for a shared inference slot, over every worker of the process: each worker keeps its own FIFO
/// queue, and this keeps their total within the `queue` setting. Thread-safe.
final class SharedQueueCount: Sendable {
    private let count = Atomic<Int>(0)

    init() {}

    /// Takes a place if fewer than `limit` are taken; false when the queue is full.
    func enter(limit: Int) -> Bool {
        var current = count.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = count.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives a place back.
    func leave() {
        count.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Places taken now.
    var value: Int { count.load(ordering: .relaxed) }
}
