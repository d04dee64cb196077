import CTollgate
import Glibc
import Synchronization

/// Marks the threads that run an event loop (see `EventLoop.onLoopThread`).
private let loopThreadKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// One epoll instance on one thread. Connections registered here are only touched from this thread.
///
/// Timeouts are deadlines on handlers, checked by a sweep every `tick` (they fire at most one tick late);
/// other threads hand work to the loop with `execute`, which wakes it through an eventfd.
public final class EventLoop: @unchecked Sendable {
    private struct Slot {
        var handler: (any EventHandler)?
        var generation: UInt32
        var interest: Interest
    }

    private let epfd: Int32
    private let wakeFD: Int32
    private var slots: [Slot] = []
    private var nextGeneration: UInt32 = 1
    /// Work from other threads, run at the next wakeup; nil once `run` has returned (see `releaseEverything`).
    private let pending = Mutex<[@Sendable () -> Void]?>([])
    private var oneShots: [(deadline: UInt64, body: () -> Void)] = []
    /// The earliest deadline in `oneShots` (`UInt64.max` when there is none): a pass with nothing due looks at this
    /// one value, not at every timer.
    private var earliestOneShot = UInt64.max
    private var afterIteration: [() -> Void] = []
    /// The deferred work of the pass now running; `afterIteration` and this swap buffers, so deferring allocates
    /// nothing once both have grown.
    private var runningAfterIteration: [() -> Void] = []
    private var lastSweep: UInt64 = 0
    private var running = false
    private let tick: UInt64

    /// Monotonic nanoseconds, read once per loop iteration.
    public private(set) var now: UInt64
    /// The loop's index among the server's loops.
    public let index: Int
    /// Number of registered descriptors (for metrics and drain).
    public private(set) var registeredCount = 0
    private let iterationCount = Atomic<UInt64>(0)
    /// Passes through `epoll_wait` so far. Readable from any thread: tests assert a loop is not spinning by how
    /// little this grows while an attack is held.
    public var iterations: UInt64 { iterationCount.load(ordering: .relaxed) }

    /// Creates the epoll instance and the wakeup eventfd.
    public init(index: Int, tickMillis: UInt64 = 250) throws(SocketError) {
        self.index = index
        self.tick = tickMillis * 1_000_000
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else { throw SocketError("epoll_create1: \(Syscall.describe(errno))") }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard wakeFD >= 0 else { throw SocketError("eventfd: \(Syscall.describe(errno))") }
        now = Syscall.monotonicNanos()
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.u64 = UInt64.max
        epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, &ev)
    }

    deinit {
        Syscall.close(wakeFD)
        Syscall.close(epfd)
    }

    // MARK: registration

    /// Starts watching fd for `interest` (peer-close is always watched) on behalf of handler, which the loop keeps
    /// until `deregister`. The caller still owns and closes the fd.
    public func register(_ fd: Int32, interest: Interest, handler: any EventHandler) {
        let i = Int(fd)
        if i >= slots.count {
            slots.append(contentsOf: repeatElement(Slot(handler: nil, generation: 0, interest: []), count: max(i + 1 - slots.count, slots.count)))
        }
        nextGeneration &+= 1
        if nextGeneration == 0 { nextGeneration = 1 }
        slots[i] = Slot(handler: handler, generation: nextGeneration, interest: interest)
        var ev = epoll_event()
        ev.events = EventLoop.mask(interest)
        ev.data.u64 = UInt64(nextGeneration) << 32 | UInt64(UInt32(bitPattern: fd))
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
        registeredCount += 1
    }

    /// Changes the interest; calls epoll_ctl only when the mask really changes (h2o).
    public func setInterest(_ fd: Int32, _ interest: Interest) {
        let i = Int(fd)
        guard i < slots.count, slots[i].handler != nil, slots[i].interest != interest else { return }
        slots[i].interest = interest
        var ev = epoll_event()
        ev.events = EventLoop.mask(interest)
        ev.data.u64 = UInt64(slots[i].generation) << 32 | UInt64(UInt32(bitPattern: fd))
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    /// Stops watching fd and drops the loop's reference to its handler. Call before closing the fd.
    public func deregister(_ fd: Int32) {
        let i = Int(fd)
        guard i < slots.count, slots[i].handler != nil else { return }
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
        slots[i].handler = nil
        slots[i].interest = []
        registeredCount -= 1
    }

    /// Drops the loop's reference to fd's handler without telling epoll, for a caller that closes fd next and
    /// holds no other descriptor of the same socket: the close removes it from epoll (epoll(7)), one system call
    /// fewer per connection. Events already fetched for fd carry its old generation and are ignored.
    public func forget(_ fd: Int32) {
        let i = Int(fd)
        guard i < slots.count, slots[i].handler != nil else { return }
        slots[i].handler = nil
        slots[i].interest = []
        registeredCount -= 1
    }

    private static func mask(_ interest: Interest) -> UInt32 {
        var m = EPOLLRDHUP.rawValue
        if interest.contains(.read) { m |= EPOLLIN.rawValue }
        if interest.contains(.write) { m |= EPOLLOUT.rawValue }
        return m
    }

    // MARK: work from this thread and others

    /// Runs body on the loop's thread soon. Safe from any thread. True: `body` runs, even if the loop stops first.
    /// False when the loop has finished (or runs its last round of work after stopping): it never runs `body`, which
    /// is dropped here rather than kept (with all it holds), and a sender that was handing something over (a slot, a
    /// lease) gives it back itself.
    @discardableResult
    public func execute(_ body: @escaping @Sendable () -> Void) -> Bool {
        guard pending.withLock({ queue in
            guard queue != nil else { return false }
            queue!.append(body)
            return true
        }) else { return false }
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
        return true
    }

    /// Runs body on this loop once `delayNanos` have passed (at most one tick late). Loop thread only.
    public func schedule(afterNanos delayNanos: UInt64, _ body: @escaping () -> Void) {
        let deadline = now &+ delayNanos
        oneShots.append((deadline, body))
        if deadline < earliestOneShot { earliestOneShot = deadline }
    }

    /// Runs body at the end of the current iteration, after all events were handled (log flushing). Work deferred
    /// while deferred work runs waits for the next iteration, which polls epoll without blocking first: deferred work
    /// never keeps the loop from its sockets and timers. Loop thread only.
    public func deferUntilIterationEnd(_ body: @escaping () -> Void) {
        afterIteration.append(body)
    }

    /// Calls body with every registered handler (drain). Loop thread only.
    public func forEachHandler(_ body: (any EventHandler) -> Void) {
        for slot in slots where slot.handler != nil { body(slot.handler!) }
    }

    /// Stops `run` after the current iteration. Loop thread only (use `execute` from elsewhere).
    public func stop() { running = false }

    // MARK: running

    /// Whether the calling thread runs an event loop (where nothing may block: diagnostics queue their lines).
    public static var onLoopThread: Bool { pthread_getspecific(loopThreadKey) != nil }

    /// Runs until `stop`. Call on the thread that owns this loop.
    public func run() {
        running = true
        pthread_setspecific(loopThreadKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(loopThreadKey, nil) }
        let capacity = 512
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while running {
            let timeout = earliestOneShot == .max && afterIteration.isEmpty ? Int32(tick / 1_000_000) : computeTimeout()
            let n = epoll_wait(epfd, events, Int32(capacity), timeout)
            now = Syscall.monotonicNanos()
            iterationCount.add(1, ordering: .relaxed)
            if n > 0 {
                for k in 0..<Int(n) {
                    let ev = events[k]
                    let data = ev.data.u64
                    if data == UInt64.max {
                        drainWakeups()
                        continue
                    }
                    let fd = Int(UInt32(truncatingIfNeeded: data))
                    let generation = UInt32(truncatingIfNeeded: data >> 32)
                    // An event for a descriptor closed earlier in this batch (and maybe reused) is dropped.
                    guard fd < slots.count, slots[fd].generation == generation, let handler = slots[fd].handler else { continue }
                    var ready: ReadyEvents = []
                    if ev.events & EPOLLIN.rawValue != 0 { ready.insert(.readable) }
                    if ev.events & EPOLLOUT.rawValue != 0 { ready.insert(.writable) }
                    if ev.events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue) != 0 { ready.insert(.peerClosed) }
                    if ev.events & EPOLLERR.rawValue != 0 { ready.insert(.error) }
                    handler.ready(ready)
                }
            }
            runOneShots()
            if now &- lastSweep >= tick { sweep() }
            runAfterIteration()
        }
        releaseEverything()
    }

    /// Lets go of everything the loop held to run once it has stopped: timers, deferred work and its handlers, after
    /// running the work other threads sent before this, and `execute` drops work from then on.
    /// A periodic timer's body holds the workers it visits, each of which holds its loop, so without this a stopped
    /// server's workers, their TLS contexts and their descriptors were never freed: harmless for the one server of a
    /// `tollgate serve`, but every test's server stayed, until a long test run ran out of OpenSSL's per-context
    /// thread keys. The work sent before the stop still runs because some of it gives something back: a slot the
    /// concurrency limiter handed to a request whose connection closed in the pass that stopped the loop returns
    /// through that hand-over.
    private func releaseEverything() {
        // Rounds, for work that sends more: bounded, so that work which always sends itself again cannot keep a
        // stopped loop's thread forever. The queue closes before the last round runs: what that round sends is
        // refused (its sender gives back what it was handing over), never taken and then dropped.
        var rounds = 0
        while true {
            let work = pending.withLock { queue -> [@Sendable () -> Void]? in
                guard let queued = queue, !queued.isEmpty else {
                    queue = nil
                    return nil
                }
                queue = rounds < 15 ? [] : nil
                return queued
            }
            guard let work else { break }
            rounds += 1
            for body in work { body() }
        }
        // Moved out first and dropped when this returns, outside any access to the loop's own state: what they hold
        // may deinitialise then, and a handler's deinit may call back (`deregister`).
        let timers = oneShots, deferred = afterIteration, handlers = slots
        oneShots = []
        earliestOneShot = .max
        afterIteration = []
        runningAfterIteration = []
        slots = []
        registeredCount = 0
        withExtendedLifetime((timers, deferred, handlers)) {}
    }

    private func computeTimeout() -> Int32 {
        if !afterIteration.isEmpty { return 0 }
        let earliest = min(now &+ tick, earliestOneShot)
        return earliest <= now ? 0 : Int32((earliest - now + 999_999) / 1_000_000)
    }

    private func drainWakeups() {
        var value: UInt64 = 0
        _ = Glibc.read(wakeFD, &value, 8)
        let work = pending.withLock { queue -> [@Sendable () -> Void] in
            let w = queue ?? []
            queue?.removeAll(keepingCapacity: true)
            return w
        }
        for body in work { body() }
    }

    private func runOneShots() {
        guard now >= earliestOneShot else { return }
        var due: [() -> Void] = []
        var earliest = UInt64.max
        oneShots.removeAll { entry in
            if entry.deadline <= now { due.append(entry.body); return true }
            if entry.deadline < earliest { earliest = entry.deadline }
            return false
        }
        earliestOneShot = earliest
        for body in due { body() }
    }

    /// Runs the work deferred before this pass only. What it defers in turn runs after the next `epoll_wait` (with
    /// a zero timeout, see `computeTimeout`): a body that keeps deferring itself cannot starve sockets and timers.
    private func runAfterIteration() {
        guard !afterIteration.isEmpty else { return }
        swap(&afterIteration, &runningAfterIteration)
        for body in runningAfterIteration { body() }
        runningAfterIteration.removeAll(keepingCapacity: true)
    }

    private func sweep() {
        lastSweep = now
        var i = 0
        while i < slots.count {
            if let handler = slots[i].handler {
                let d = handler.deadline
                if d != 0 && d <= now { handler.deadlineExpired(now: now) }
            }
            i += 1
        }
    }
}
