@testable import Tollgate
import Testing

@Suite("WaitQueue: FIFO order, cancel by ticket, expiry")
struct LimitsWaitQueueTests {
    /// A queue of names under tickets 1, 2, 3... joined at the given times.
    func queue(_ names: [String], at times: [UInt64]? = nil) -> WaitQueue<String> {
        var q = WaitQueue<String>(reservingCapacity: names.count)
        for (i, name) in names.enumerated() {
            q.append(name, ticket: UInt64(i + 1), now: times?[i] ?? 0)
        }
        return q
    }

    func names(_ q: WaitQueue<String>) -> [String] { (0..<q.count).map { q[$0] } }

    /// `cancel` for each ticket in turn, recording the answers (mutating calls cannot sit inside `#expect`).
    func cancel(_ q: inout WaitQueue<String>, _ tickets: UInt64...) -> [Bool] {
        tickets.map { q.cancel(ticket: $0) }
    }

    @Test func keepsArrivalOrder() {
        let q = queue(["a", "b", "c"])
        #expect(q.count == 3)
        #expect(!q.isEmpty)
        #expect(names(q) == ["a", "b", "c"])
        #expect(WaitQueue<String>().isEmpty)
    }

    @Test func waitersAreFoundAndTakenByTicket() {
        var q = queue(["a", "b", "c"])
        #expect(q.tickets == [1, 2, 3])
        #expect(q.element(ticket: 2) == "b")
        #expect(q.element(ticket: 9) == nil)
        #expect(names(q) == ["a", "b", "c"])
        let taken = q.take(ticket: 2)
        #expect(taken == "b")
        let again = q.take(ticket: 2)
        #expect(again == nil)
        #expect(q.tickets == [1, 3])
        #expect(names(q) == ["a", "c"])
    }

    @Test func theFirstEligibleIsTakenAndTheOthersKeepTheirPlaces() throws {
        var q = queue(["a", "b", "c", "d"])
        let i = try #require(q.firstIndex { $0 != "a" })
        #expect(i == 1)
        let taken = q.remove(at: i)
        #expect(taken == "b")
        #expect(names(q) == ["a", "c", "d"])
        #expect(q.firstIndex { $0 == "z" } == nil)
        #expect(q.contains { $0 == "d" })
        #expect(!q.contains { $0 == "b" })
    }

    @Test func cancelRemovesOnlyAWaitingTicket() {
        var q = queue(["a", "b", "c"])
        #expect(cancel(&q, 2, 2, 99) == [true, false, false])
        #expect(names(q) == ["a", "c"])
        // A waiter taken out by remove(at:) is no longer waiting either.
        q.remove(at: 0)
        #expect(cancel(&q, 1, 3) == [false, true])
        #expect(q.isEmpty)
    }

    @Test func expireTakesThoseWhoWaitedTheWholeTimeoutInOrder() {
        var q = queue(["a", "b", "c", "d"], at: [1_000, 5_000, 2_000, 9_000])
        let none = q.expire(now: 10_999, timeout: 10_000)
        #expect(none.isEmpty)
        // Exactly the timeout counts as expired.
        let first = q.expire(now: 12_000, timeout: 10_000)
        #expect(first == ["a", "c"])
        #expect(names(q) == ["b", "d"])
        let second = q.expire(now: 18_999, timeout: 10_000)
        #expect(second == ["b"])
        #expect(names(q) == ["d"])
    }

    @Test func aWaiterFromTheFutureHasNotWaited() {
        // Another loop's clock may read a little ahead of the one that sweeps.
        var q = queue(["a"], at: [5_000])
        let early = q.expire(now: 4_000, timeout: 0)
        #expect(early.isEmpty)
        let onTime = q.expire(now: 5_000, timeout: 0)
        #expect(onTime == ["a"])
    }

    @Test func ticketsNeedNotBeDense() {
        var q = WaitQueue<String>()
        q.append("x", ticket: 40, now: 0)
        q.append("y", ticket: 7, now: 0)
        #expect(cancel(&q, 1, 40) == [false, true])
        #expect(names(q) == ["y"])
    }
}
