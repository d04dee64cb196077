/// A FIFO queue of waiting requests, each under a ticket and the time it joined: the part `ConcurrencyState` and
/// `BackendSetState` share (cancel by ticket, time out after a wait, hand room to the first that can use it).
///
/// A plain value with no lock; its owner locks it. The owner hands out the tickets (they may share a counter with
/// its slot or lease ids). Taking the first waiter that can be served is two calls, `firstIndex(where:)` then
/// `remove(at:)`: one mutating call whose predicate reads the owner's state would be an overlapping access to it.
struct WaitQueue<Element> {
    fileprivate struct Entry {
        let ticket: UInt64
        let since: UInt64
        let element: Element
    }

    private var entries: [Entry] = []

    /// An empty queue with room for `capacity` waiters before it grows.
    init(reservingCapacity capacity: Int = 0) {
        entries.reserveCapacity(max(0, capacity))
    }

    /// Waiters in the queue.
    var count: Int { entries.count }

    /// Whether nobody waits.
    var isEmpty: Bool { entries.isEmpty }

    /// The waiter at `position` (0: the longest waiting).
    subscript(position: Int) -> Element { entries[position].element }

    /// Adds `element` at the back under `ticket`, waiting since `now`.
    mutating func append(_ element: Element, ticket: UInt64, now: UInt64) {
        entries.append(Entry(ticket: ticket, since: now, element: element))
    }

    /// The position of the longest-waiting waiter that satisfies `predicate`.
    func firstIndex(where predicate: (Element) throws -> Bool) rethrows -> Int? {
        try entries.firstIndex { try predicate($0.element) }
    }

    /// The position of the longest-waiting waiter at or after `position` that satisfies `predicate`.
    func firstIndex(after position: Int, where predicate: (Element) throws -> Bool) rethrows -> Int? {
        guard position < entries.count else { return nil }
        return try entries[position...].firstIndex { try predicate($0.element) }
    }

    /// The waiter at `position`.
    func element(at position: Int) -> Element { entries[position].element }

    /// How many waiting elements satisfy `predicate`.
    func count(where predicate: (Element) throws -> Bool) rethrows -> Int {
        var n = 0
        for entry in entries where try predicate(entry.element) { n += 1 }
        return n
    }

    /// Whether some waiter satisfies `predicate`.
    func contains(where predicate: (Element) throws -> Bool) rethrows -> Bool {
        try entries.contains { try predicate($0.element) }
    }

    /// Removes and returns the waiter at `position`; the others keep their order.
    @discardableResult
    mutating func remove(at position: Int) -> Element {
        entries.remove(at: position).element
    }

    /// Removes the waiter under `ticket`; false if it is not waiting (already granted, expired or cancelled).
    mutating func cancel(ticket: UInt64) -> Bool {
        take(ticket: ticket) != nil
    }

    /// Removes and returns the waiter under `ticket`, or nil if it is not waiting.
    mutating func take(ticket: UInt64) -> Element? {
        guard let i = entries.firstIndex(where: { $0.ticket == ticket }) else { return nil }
        return entries.remove(at: i).element
    }

    /// The waiter under `ticket`, left in place, or nil if it is not waiting.
    func element(ticket: UInt64) -> Element? {
        entries.first { $0.ticket == ticket }?.element
    }

    /// The tickets of every waiter, longest waiting first (a snapshot to walk while the queue changes).
    var tickets: [UInt64] { entries.map(\.ticket) }

    /// Removes the waiters that have waited `timeout` or longer at `now` and returns them, longest waiting first.
    /// A waiter that joined after `now` (an earlier reading of another loop's clock) has not waited at all.
    mutating func expire(now: UInt64, timeout: UInt64) -> [Element] {
        var expired: [Element] = []
        entries.removeAll { entry in
            guard now >= entry.since, now - entry.since >= timeout else { return false }
            expired.append(entry.element)
            return true
        }
        return expired
    }
}

extension WaitQueue: Sendable where Element: Sendable {}
extension WaitQueue.Entry: Sendable where Element: Sendable {}
