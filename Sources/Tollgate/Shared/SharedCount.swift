import Synchronization

/// A count over every worker of the process: requests waiting for a shared inference slot (each worker keeps its
/// own FIFO queue, and this keeps their total within the `queue` setting), or leases held. Thread-safe.
final class SharedCount: Sendable {
    private let count = Atomic<Int>(0)

    /// Zero.
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

    /// Counts one more, without a limit.
    func increment() {
        count.wrappingAdd(1, ordering: .relaxed)
    }

    /// Gives a place back.
    func leave() {
        count.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Places taken now.
    var value: Int { count.load(ordering: .relaxed) }
}
