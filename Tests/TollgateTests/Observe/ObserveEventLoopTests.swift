import Dispatch
import Glibc
import Synchronization
import Testing
import TollgateIO

/// The event loop's own guarantee: deferred work that keeps deferring itself cannot keep the loop from its timers
/// and sockets (it runs one pass per iteration, the rest after the next `epoll_wait`).
@Suite struct ObserveEventLoopTests {
    @Test func selfDeferringWorkDoesNotStarveTimers() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let stopped = DispatchSemaphore(value: 0)
        let box = LoopBox(loop)
        DispatchQueue.global().async {
            box.loop.execute {
                // Work that defers itself again every time it runs, forever.
                func again() { box.loop.deferUntilIterationEnd { again() } }
                again()
                // The timer stops the loop: it can only fire if the loop gets back to epoll_wait and its timers.
                box.loop.schedule(afterNanos: 1_000_000) { box.loop.stop() }
            }
            box.loop.run()
            stopped.signal()
        }
        #expect(stopped.wait(timeout: .now() + 30) == .success, "the timer never fired: the loop is starved")
    }

    /// Timers fire when due, whatever order they were scheduled in; one a timer schedules is seen at once, though
    /// the only other timer left is an hour away (the loop keeps the earliest deadline, not a scan of all).
    @Test func timersFireWhenDueWhateverTheOrderTheyWereScheduledIn() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let stopped = DispatchSemaphore(value: 0)
        let box = LoopBox(loop)
        let fired = FiredTimers()
        DispatchQueue.global().async {
            box.loop.execute {
                box.loop.schedule(afterNanos: 3_600_000_000_000) { fired.names.append("an hour") }
                box.loop.schedule(afterNanos: 2_000_000) {
                    fired.names.append("second")
                    box.loop.schedule(afterNanos: 0) {
                        fired.names.append("third")
                        box.loop.stop()
                    }
                }
                box.loop.schedule(afterNanos: 0) { fired.names.append("first") }
            }
            box.loop.run()
            stopped.signal()
        }
        #expect(stopped.wait(timeout: .now() + 30) == .success, "a due timer waited for a later one")
        #expect(fired.names == ["first", "second", "third"])
    }

    /// Timers scheduled every way a loop schedules them (from `execute`, from inside another timer's body, from
    /// deferred work), in random order with random delays: each fires exactly once, never before its deadline.
    @Test func everyTimerFiresOnceAndNotEarlyWhereverItWasScheduled() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let stopped = DispatchSemaphore(value: 0)
        let box = LoopBox(loop)
        let record = TimerRecord()
        let total = 300
        DispatchQueue.global().async {
            box.loop.execute {
                var rng: UInt64 = 0x2545_F491_4F6C_DD1D
                func next(_ bound: UInt64) -> UInt64 {
                    rng ^= rng << 13
                    rng ^= rng >> 7
                    rng ^= rng << 17
                    return rng % bound
                }
                var scheduled = 0
                func add() {
                    guard scheduled < total else { return }
                    let id = scheduled
                    scheduled += 1
                    let delay = [0, 1, 1_000, 500_000, 2_000_000, 7_000_000][Int(next(6))]
                    let deadline = box.loop.now &+ UInt64(delay)
                    let from = next(3)
                    box.loop.schedule(afterNanos: UInt64(delay)) {
                        record.fired[id, default: 0] += 1
                        if box.loop.now < deadline { record.early.append(id) }
                        // Each body schedules more: at once, from deferred work, or not at all.
                        if from == 0 { add(); add() }
                        if from == 1 { box.loop.deferUntilIterationEnd { add(); add() } }
                        if record.fired.count == total { box.loop.stop() }
                    }
                }
                for _ in 0..<10 { add() }
                // Deferred work that keeps scheduling until all are in, then stops deferring.
                func keepAdding() {
                    add()
                    if scheduled < total { box.loop.deferUntilIterationEnd { keepAdding() } }
                }
                box.loop.deferUntilIterationEnd { keepAdding() }
            }
            box.loop.run()
            stopped.signal()
        }
        #expect(stopped.wait(timeout: .now() + 30) == .success, "a timer never fired")
        #expect(record.fired.count == total)
        #expect(record.fired.values.allSatisfy { $0 == 1 }, "a timer fired more than once")
        #expect(record.early.isEmpty, "timers fired before their deadline: \(record.early)")
    }

    /// A loop that has stopped lets go of what it held to run: a timer that never came due, deferred work, a handler
    /// still registered, work sent to it before and after it stopped. Each holds an object here; every one is freed
    /// once `run` has returned. Of the work, only what was sent before the stop runs (it may give something back,
    /// such as a concurrency slot); timers and deferred work do not, and work sent later is refused and dropped at
    /// once. (A periodic timer holding the workers that hold its loop kept every stopped server alive, each with its
    /// TLS contexts and descriptors.)
    @Test func aStoppedLoopLetsGoOfWhatItHeldAndDropsLaterWork() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let box = LoopBox(loop)
        let ran = FiredTimers()
        weak var timerHeld: Marker?, deferredHeld: Marker?, handlerHeld: Marker?, pendingHeld: Marker?
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let readFD = fds[0]
        do {
            let timerMarker = Marker(), deferredMarker = Marker(), handler = Marker(), pendingMarker = Marker()
            timerHeld = timerMarker
            deferredHeld = deferredMarker
            handlerHeld = handler
            pendingHeld = pendingMarker
            let held = UncheckedSendable((timerMarker, deferredMarker, handler, pendingMarker))
            // Queued before the loop runs, so only this work holds the markers (not the thread that runs the loop,
            // whose closure may be released a moment after it signals).
            loop.execute {
                let (timerMarker, deferredMarker, handler, pendingMarker) = held.value
                box.loop.register(readFD, interest: .read, handler: handler)
                box.loop.schedule(afterNanos: 3_600_000_000_000) { ran.names.append("timer \(timerMarker)") }
                box.loop.stop()
                // Run after this pass's events and timers: the loop stops at the end of this iteration, and
                // this work defers itself once more, to an iteration that never comes.
                box.loop.deferUntilIterationEnd {
                    box.loop.deferUntilIterationEnd { ran.names.append("deferred \(deferredMarker)") }
                }
                // Queued for the next wakeup, which never comes: the loop ends with this iteration.
                let pending = UncheckedSendable(pendingMarker)
                box.loop.execute {
                    _ = pending.value
                    ran.names.append("pending")
                    // Sent by work that runs after the stop: it runs too.
                    box.loop.execute { ran.names.append("sent by pending") }
                }
            }
            #expect(box.runInBackground()(), "the loop did not stop")
        }
        #expect(timerHeld == nil, "the hour timer's body is still held")
        #expect(deferredHeld == nil, "deferred work is still held")
        #expect(handlerHeld == nil, "the registered handler is still held")
        #expect(pendingHeld == nil, "work sent before the stop is still held")
        #expect(ran.names == ["pending", "sent by pending"], "\(ran.names)")
        // Work sent to the stopped loop is dropped at once, not kept.
        weak var lateHeld: Marker?
        do {
            let late = Marker()
            lateHeld = late
            let sent = UncheckedSendable(late)
            let accepted = loop.execute { ran.names.append("late \(sent.value)") }
            // Said to its sender, who gives back what the work was handing over.
            #expect(!accepted, "the stopped loop took work it will never run")
        }
        #expect(lateHeld == nil, "work sent after the stop is still held")
        #expect(ran.names == ["pending", "sent by pending"])
    }

    /// Work that sends itself again forever does not keep a stopped loop's thread: the loop runs what was sent before
    /// the stop for a bounded number of rounds, then refuses the rest. A refused body whose deinit sends more work
    /// (here every body holds an object that does) is let go of outside the queue's lock, so that send is refused
    /// too, not a deadlock.
    @Test func workThatAlwaysSendsMoreCannotKeepAStoppedLoop() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let box = LoopBox(loop)
        let resender = Resender(loop: loop)
        loop.execute {
            box.loop.stop()
            resender.send()
        }
        #expect(box.runInBackground()(), "a stopped loop kept running work that sends more")
        #expect((1...17).contains(resender.rounds), "\(resender.rounds) rounds")
        #expect(resender.last == nil, "the last body sent is still held")
    }

    /// A body the loop took (`execute` said true) runs, even when work that keeps sending more reaches the bound on a
    /// stopped loop's rounds: what the last round sends is refused, not taken and then dropped. A sender hands
    /// something over (a slot, a lease) and gives it back only when refused; taken and dropped, it stayed counted.
    @Test func aStoppedLoopRunsEveryBodyItTookEvenAtItsBoundOnRounds() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let box = LoopBox(loop)
        let resender = CountingResender(loop: loop)
        loop.execute {
            box.loop.stop()
            resender.send()
        }
        #expect(box.runInBackground()(), "a stopped loop kept running work that sends more")
        #expect(resender.refused, "the loop never refused the work that kept sending more")
        #expect(resender.taken == resender.rounds, "taken \(resender.taken) bodies, ran \(resender.rounds)")
    }

    /// Work sent from other threads while the loop stops (one of those bodies stops it) either runs, once, or is let
    /// go of, never kept: once the loop and the senders have finished, every body has been freed, none ran twice,
    /// and every body the stopping thread sent before the stop ran. `execute` decides under the queue's lock, and
    /// the loop closes the queue under the same lock, so a body is queued for a wakeup that comes or dropped at once.
    @Test func workSentWhileTheLoopStopsRunsOnceOrIsLetGo() throws {
        let loop = try EventLoop(index: 0, tickMillis: 10)
        let box = LoopBox(loop)
        let senders = 4, each = 2_000
        let tally = WorkTally(count: senders * each)
        let waitUntilStopped = box.runInBackground()
        DispatchQueue.concurrentPerform(iterations: senders) { sender in
            for k in 0..<each {
                let token = WorkToken(id: sender * each + k, tally: tally)
                box.loop.execute { token.tally.ran[token.id] += 1 }
                if sender == 0 && k == each / 2 { box.loop.execute { box.loop.stop() } }
            }
        }
        #expect(waitUntilStopped(), "the loop did not stop")
        #expect(tally.released.load(ordering: .relaxed) == senders * each, "work sent to the loop is still held")
        #expect(tally.ran.allSatisfy { $0 <= 1 }, "a body ran more than once")
        #expect(tally.ran[0...each / 2].allSatisfy { $0 == 1 }, "work sent before the stop, by the thread that stopped it, was dropped")
    }
}

/// What the bodies of `workSentWhileTheLoopStopsRunsOnceOrIsLetGo` did: `ran` is written on the loop's thread and
/// read after it stopped; `released` counts the bodies freed, on whatever thread.
final class WorkTally: @unchecked Sendable {
    var ran: [Int]
    let released = Atomic<Int>(0)
    init(count: Int) { ran = Array(repeating: 0, count: count) }
}

/// One body's capture: counts itself released when the body holding it is freed.
final class WorkToken: @unchecked Sendable {
    let id: Int
    let tally: WorkTally
    init(id: Int, tally: WorkTally) {
        self.id = id
        self.tally = tally
    }
    deinit { tally.released.add(1, ordering: .relaxed) }
}

/// Work that sends itself to its loop again each time it runs, each body holding a `SendsOnDeinit`. `rounds` and
/// `last` are written on the loop's thread and read after it stopped.
final class Resender: @unchecked Sendable {
    let loop: EventLoop
    var rounds = 0
    weak var last: SendsOnDeinit?
    init(loop: EventLoop) { self.loop = loop }

    func send() {
        let holder = SendsOnDeinit(loop: loop)
        last = holder
        let sent = UncheckedSendable(holder)
        loop.execute { [self] in
            _ = sent.value
            rounds += 1
            send()
        }
    }
}

/// Work that sends itself to its loop again each time it runs, counting the sends the loop took and whether one was
/// refused. Written on the loop's thread and read after it stopped.
final class CountingResender: @unchecked Sendable {
    let loop: EventLoop
    var rounds = 0
    var taken = 0
    var refused = false
    init(loop: EventLoop) { self.loop = loop }

    func send() {
        if loop.execute({ [self] in
            rounds += 1
            send()
        }) {
            taken += 1
        } else {
            refused = true
        }
    }
}

/// Sends work to its loop when it is freed (which a stopped loop refuses).
final class SendsOnDeinit: @unchecked Sendable {
    let loop: EventLoop
    init(loop: EventLoop) { self.loop = loop }
    deinit { loop.execute {} }
}

/// An object whose lifetime a test watches; as a handler it ignores every event.
final class Marker: EventHandler {
    func ready(_ events: ReadyEvents) {}
    var deadline: UInt64 { 0 }
    func deadlineExpired(now: UInt64) {}
}

/// Moves a value into a `@Sendable` closure (the test hands it to the loop's thread once).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Which timers fired how often, and which fired early, written on the loop's thread and read after it stopped.
final class TimerRecord: @unchecked Sendable {
    var fired: [Int: Int] = [:]
    var early: [Int] = []
}

/// What the timers of one loop did, written on the loop's thread and read after it stopped.
final class FiredTimers: @unchecked Sendable {
    var names: [String] = []
}

/// Hands the loop to its thread (it is only touched there and through `execute`).
final class LoopBox: @unchecked Sendable {
    let loop: EventLoop
    init(_ loop: EventLoop) { self.loop = loop }

    /// Runs the loop on a dispatch thread. The function returned waits for `run` to return and says whether it did
    /// (after 30 s it gives up, so that a loop that never stops fails its test instead of hanging the run).
    func runInBackground() -> () -> Bool {
        let stopped = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { [self] in
            loop.run()
            stopped.signal()
        }
        return { stopped.wait(timeout: .now() + 30) == .success }
    }
}
