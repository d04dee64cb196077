@testable import Tollgate
import Dispatch
import Synchronization
import Testing

/// Records callbacks in order, from any thread.
final class CallLog: Sendable {
    private let entries = Mutex<[String]>([])
    private let slots = Mutex<[String: ConcurrencyLimiter.Slot]>([:])

    var all: [String] { entries.withLock { $0 } }
    func slot(_ name: String) -> ConcurrencyLimiter.Slot? { slots.withLock { $0[name] } }

    func granted(_ name: String) -> @Sendable (ConcurrencyLimiter.Slot) -> Void {
        { slot in
            self.entries.withLock { $0.append("granted \(name)") }
            self.slots.withLock { $0[name] = slot }
        }
    }

    func expired(_ name: String) -> @Sendable () -> Void {
        { self.entries.withLock { $0.append("expired \(name)") } }
    }
}

@Suite("ConcurrencyLimiter: in-flight caps and the wait queue")
struct LimitsConcurrencyTests {
    func limiter(perUser: Int = 2, global: Int = 4, queue: Int = 16, timeout: UInt64 = 30_000) -> ConcurrencyLimiter {
        var s = ConcurrencyLimiter.Settings()
        s.perUser = perUser
        s.global = global
        s.queueLimit = queue
        s.queueTimeoutMillis = timeout
        return ConcurrencyLimiter(settings: s)
    }

    func take(_ l: ConcurrencyLimiter, _ user: String, _ log: CallLog, name: String? = nil, at now: UInt64 = 0)
        -> ConcurrencyLimiter.Acquire {
        let n = name ?? user
        return l.acquire(user: user, nowMillis: now, onGranted: log.granted(n), onExpired: log.expired(n))
    }

    func slot(_ a: ConcurrencyLimiter.Acquire) -> ConcurrencyLimiter.Slot? {
        if case .acquired(let s) = a { return s }
        return nil
    }

    func ticket(_ a: ConcurrencyLimiter.Acquire) -> UInt64? {
        if case .queued(let t) = a { return t }
        return nil
    }

    @Test func perUserCapQueuesTheThird() throws {
        let l = limiter(), log = CallLog()
        let a1 = try #require(slot(take(l, "alice", log)))
        #expect(slot(take(l, "alice", log)) != nil)
        #expect(ticket(take(l, "alice", log, name: "alice3")) != nil)
        #expect(l.inFlight == 2 && l.queued == 1 && l.inFlight(user: "alice") == 2)
        l.release(a1)
        #expect(log.all == ["granted alice3"])
        #expect(l.inFlight == 2 && l.queued == 0)
    }

    @Test func globalCapQueuesEveryoneElse() throws {
        let l = limiter(), log = CallLog()
        let first = try #require(slot(take(l, "a", log)))
        for user in ["b", "c", "d"] { #expect(slot(take(l, user, log)) != nil) }
        #expect(ticket(take(l, "e", log)) != nil)
        #expect(ticket(take(l, "f", log)) != nil)
        #expect(l.inFlight == 4 && l.queued == 2)
        l.release(first)
        #expect(log.all == ["granted e"])  // FIFO, granted before release returns
        let e = try #require(log.slot("e"))
        l.release(e)
        #expect(log.all == ["granted e", "granted f"])
    }

    @Test func aUserAtItsCapDoesNotBlockOthersBehindIt() throws {
        let l = limiter(perUser: 2, global: 3), log = CallLog()
        let a1 = try #require(slot(take(l, "alice", log)))
        _ = try #require(slot(take(l, "alice", log)))
        let b1 = try #require(slot(take(l, "bob", log)))
        #expect(ticket(take(l, "alice", log, name: "alice3")) != nil)  // first in line, but alice is at her cap
        #expect(ticket(take(l, "carol", log)) != nil)
        l.release(b1)  // one global slot frees: alice3 is skipped, carol gets it
        #expect(log.all == ["granted carol"])
        #expect(l.queued == 1)
        l.release(a1)  // alice3 kept her place and now goes
        #expect(log.all == ["granted carol", "granted alice3"])
        #expect(l.queued == 0 && l.inFlight == 3)
    }

    @Test func newcomersDoNotJumpTheQueueWhenFull() throws {
        let l = limiter(perUser: 4, global: 1), log = CallLog()
        let a = try #require(slot(take(l, "a", log)))
        for n in ["b", "c", "d"] { #expect(ticket(take(l, n, log)) != nil) }
        l.release(a)
        try l.release(#require(log.slot("b")))
        try l.release(#require(log.slot("c")))
        #expect(log.all == ["granted b", "granted c", "granted d"])
    }

    @Test func fullQueueIsRefusedAtOnce() throws {
        let l = limiter(perUser: 1, global: 1, queue: 2), log = CallLog()
        _ = try #require(slot(take(l, "a", log)))
        #expect(ticket(take(l, "b", log)) != nil)
        #expect(ticket(take(l, "c", log)) != nil)
        guard case .rejected(let retry) = take(l, "d", log) else { Issue.record("expected refusal"); return }
        #expect(retry == 5)
        #expect(l.queued == 2 && log.all.isEmpty)
    }

    @Test func cancelFreesThePlace() throws {
        let l = limiter(perUser: 1, global: 1, queue: 1), log = CallLog()
        let a = try #require(slot(take(l, "a", log)))
        let b = try #require(ticket(take(l, "b", log)))
        guard case .rejected = take(l, "c", log) else { Issue.record("queue should be full"); return }
        #expect(l.cancel(ticket: b))
        #expect(!l.cancel(ticket: b))
        #expect(l.queued == 0)
        #expect(ticket(take(l, "c", log)) != nil)
        l.release(a)
        #expect(log.all == ["granted c"])  // b, gone, is never granted
    }

    @Test func queueTimeoutCallsOnExpired() throws {
        let l = limiter(perUser: 1, global: 1, timeout: 30_000), log = CallLog()
        let a = try #require(slot(take(l, "a", log, at: 0)))
        #expect(ticket(take(l, "b", log, at: 1_000)) != nil)
        let c = try #require(ticket(take(l, "c", log, at: 20_000)))
        l.expire(nowMillis: 30_999)
        #expect(log.all.isEmpty)
        l.expire(nowMillis: 31_000)
        #expect(log.all == ["expired b"])
        #expect(l.queued == 1)
        l.expire(nowMillis: 10)  // a loop whose clock lags never expires early
        #expect(l.cancel(ticket: c))
        l.release(a)
        #expect(log.all == ["expired b"])  // c was cancelled above; nobody left to grant
        #expect(l.inFlight == 0)
    }

    @Test func releaseIsIdempotent() throws {
        let l = limiter(perUser: 1, global: 1), log = CallLog()
        let a = try #require(slot(take(l, "a", log)))
        l.release(a)
        l.release(a)
        #expect(l.inFlight == 0 && l.inFlight(user: "a") == 0)
        #expect(slot(take(l, "a", log)) != nil)
        #expect(ticket(take(l, "a", log)) != nil)
    }

    @Test func noSlotLeaksUnderConcurrentAcquireAndRelease() {
        let l = limiter(perUser: 2, global: 4, queue: 16)
        let peak = Atomic<Int>(0)
        let running = Atomic<Int>(0)
        let completed = Atomic<Int>(0)
        let refused = Atomic<Int>(0)
        @Sendable func work(_ slot: ConcurrencyLimiter.Slot) {
            let now = running.add(1, ordering: .relaxed).newValue
            peak.max(now, ordering: .relaxed)
            running.subtract(1, ordering: .relaxed)
            completed.add(1, ordering: .relaxed)
            l.release(slot)
        }
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for i in 0..<2_000 {
                switch l.acquire(user: "u\((thread + i) % 5)", nowMillis: 0, onGranted: { work($0) }, onExpired: {}) {
                case .acquired(let slot): work(slot)
                case .queued: break
                case .rejected: refused.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(l.inFlight == 0)
        #expect(l.queued == 0)
        #expect(completed.load(ordering: .relaxed) + refused.load(ordering: .relaxed) == 8_000)
        #expect(peak.load(ordering: .relaxed) <= 4)
    }

    @Test func oneUserCannotFillTheQueueForEveryoneElse() {
        var s = ConcurrencyLimiter.Settings()
        s.perUser = 1
        s.global = 4
        s.queueLimit = 16
        s.queuePerUser = 3
        let l = ConcurrencyLimiter(settings: s)
        let log = CallLog()
        // alice holds her one slot; her next three wait on her own cap, the fourth is refused at once.
        guard case .acquired = take(l, "alice", log, name: "a0") else { Issue.record("expected a slot"); return }
        for k in 1...3 {
            guard case .queued = take(l, "alice", log, name: "a\(k)") else { Issue.record("expected a place"); return }
        }
        guard case .rejected = take(l, "alice", log, name: "a4") else { Issue.record("alice exceeded her share"); return }
        // bob still gets a slot, and carol a place in the queue once the slots are taken.
        guard case .acquired = take(l, "bob", log) else { Issue.record("bob was turned away"); return }
        _ = take(l, "dave", log)
        _ = take(l, "erin", log)
        guard case .queued = take(l, "carol", log) else { Issue.record("carol found no place"); return }
    }

    @Test func aFreedSlotGoesToTheUserWithTheFewestInFlight() {
        let l = limiter(perUser: 2, global: 2)
        let log = CallLog()
        guard let a1 = slot(take(l, "alice", log, name: "a1")), let a2 = slot(take(l, "alice", log, name: "a2")) else {
            Issue.record("alice should hold both slots"); return
        }
        _ = take(l, "alice", log, name: "a3")
        _ = take(l, "alice", log, name: "a4")
        _ = take(l, "bob", log, name: "b1")
        // alice queued first, but bob has nothing in flight: the freed slot is his.
        l.release(a1)
        #expect(log.all == ["granted b1"])
        // Now alice has none in flight and bob one: alice's longest-waiting request, a3.
        l.release(a2)
        #expect(log.all == ["granted b1", "granted a3"])
    }
}
