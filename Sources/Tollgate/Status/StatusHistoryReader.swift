import Glibc
import TollgateIO

/// Reads the status page's history from the usage ledger on a thread of its own: the query scans up to 30 days
/// of rows on disk, which no event loop may wait for. Loops ask with `read` (an append under a short lock) and get
/// their answer on this thread; they hop back to their loop themselves.
///
/// One query runs at a time, on this thread: requests that arrive while it runs wait for it and share its answer.
/// An answer is reused for `freshMillis`, or for `busyFactor` times as long as its query took when that is longer,
/// so a page reloaded in a loop, or opened by many at once, keeps this thread busy a small part of the time however
/// slow the disk or large the ledger. A failure is an answer too (`.unavailable`), reused the same way: a ledger that
/// cannot be read (a full disk, a malformed file) is not read again for every request. The queries themselves are
/// bounded in what they return (`UsageStore.dayHistory`) and read the page's days only: the page's size
/// and this thread's memory do not grow with the ledger. The database is opened read-only on first use, and again
/// after a failure or when the path names another file (the ledger was replaced); never a crash or a wait.
///
/// Requests from the metrics listener (anyone who reaches it) and from administrators on the client listeners wait
/// in separate queues of `maxPending` each: a loop of anonymous requests cannot fill the administrators' queue.
public final class StatusHistoryReader: @unchecked Sendable {
    /// Where a request comes from: each has its own queue.
    public enum Origin: Sendable {
        /// The metrics listener: whoever reaches it, unauthenticated.
        case metricsListener
        /// An administrator, authenticated on a client listener.
        case administrator
    }

    /// What a request gets back.
    public enum Answer: Sendable {
        case history(StatusHistory)
        /// The ledger cannot be read now (why, for the page).
        case unavailable(String)
    }

    /// How the reader runs.
    public struct Settings: Sendable {
        /// The state database file (the ledger writer's).
        public var path: String
        /// Days the history covers, today included.
        public var days = 30
        /// How long an answer is reused at least.
        public var freshMillis: Int64 = 5000
        /// An answer is reused for this many times as long as its query took, when that is longer than
        /// `freshMillis`: a slow query runs a fifth of the time at most.
        public var busyFactor: Int64 = 5
        /// Users and models the token charts name (the queries return no more; the page sums the rest).
        public var seriesShown = StatusPageRenderer.seriesShown
        /// Requests waiting at most, per `Origin`; past it a request is answered at once as unavailable.
        public var maxPending = 256
        /// Wall-clock time, Unix ms (injected by tests).
        public var clock: @Sendable () -> Int64 = UsageClock.nowMillis

        public init(path: String) {
            self.path = path
        }
    }

    private struct State {
        var pending: [@Sendable (Answer) -> Void] = []
        /// Of `pending`, those from administrators.
        var pendingAdministrators = 0
        var stopping = false
    }

    public let settings: Settings
    private let lock = ConditionLock()
    private var state = State()
    private var thread: pthread_t?

    // Reader-thread state.
    private var store: UsageStore?
    /// The open database file's identity: a path naming another file is opened again.
    private var opened: FileID?
    private var cached: (at: Int64, until: Int64, answer: Answer)?

    /// Queries run so far (tests check that requests together share one).
    public var queries: Int { lock.withLock { queriesRun } }
    private var queriesRun = 0

    /// A reader; its thread starts at the first request (a server whose page is never opened has none), and
    /// opens the database then.
    public init(settings: Settings) {
        self.settings = settings
    }

    /// Asks for the history; `completion` runs on the reader's thread (or at once, on the caller's, when the reader
    /// is stopping or too far behind). Never blocks on I/O: any thread, event loops included.
    public func read(from origin: Origin = .metricsListener, _ completion: @escaping @Sendable (Answer) -> Void) {
        let refused: String? = lock.withLock {
            if state.stopping { return "the server is stopping" }
            let administrators = origin == .administrator
            let waiting = administrators ? state.pendingAdministrators
                                         : state.pending.count - state.pendingAdministrators
            if waiting >= settings.maxPending { return "too many status pages are being prepared" }
            state.pending.append(completion)
            if administrators { state.pendingAdministrators += 1 }
            if thread == nil { thread = spawnThread(name: "tollgate-status") { [self] in run() } }
            return nil
        }
        if let refused {
            completion(.unavailable(refused))
        } else {
            lock.broadcast()
        }
    }

    /// Answers what is queued, then stops the thread and closes the database. Idempotent; never on an event loop.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            defer { state.stopping = true }
            return !state.stopping
        }
        guard first else { return }
        lock.broadcast()
        // `thread` is only set under the lock, and no longer once `stopping` is.
        if let thread = lock.withLock({ thread }) { pthread_join(thread, nil) }
    }

    // MARK: the reader thread

    private func run() {
        while true {
            var batch: [@Sendable (Answer) -> Void] = []
            var stopping = false
            _ = lock.wait(until: .max) { !state.pending.isEmpty || state.stopping }
            lock.withLock {
                batch = state.pending
                state.pending.removeAll()
                state.pendingAdministrators = 0
                stopping = state.stopping
            }
            if !batch.isEmpty {
                let answer = history()
                for completion in batch { completion(answer) }
            }
            if stopping { break }
        }
        store = nil
        opened = nil
    }

    /// The history now: the cached one while fresh, else one query.
    private func history() -> Answer {
        let now = settings.clock()
        if let cached, now >= cached.at, now < cached.until { return cached.answer }
        let lastDay = UsageClock.dayStart(now) / 86_400_000
        let firstDay = lastDay - Int64(max(1, settings.days)) + 1
        let (since, until) = (firstDay * 86_400_000, (lastDay + 1) * 86_400_000)
        lock.withLock { queriesRun += 1 }
        let answer = query(since: since, until: until, firstDay: firstDay, lastDay: lastDay)
        let done = settings.clock()
        let took = max(0, done - now)
        cached = (now, done + max(settings.freshMillis, took * settings.busyFactor), answer)
        return answer
    }

    /// One reading of the ledger.
    private func query(since: Int64, until: Int64, firstDay: Int64, lastDay: Int64) -> Answer {
        if store != nil, opened == nil || FileID(path: settings.path) != opened {
            // The path names another file now (or none): what the open connection reads is no longer the ledger.
            store = nil
            opened = nil
        }
        do throws(SQLiteError) {
            let store: UsageStore
            if let open = self.store {
                store = open
            } else {
                store = try UsageStore(reading: settings.path)
                opened = FileID(path: settings.path)
            }
            self.store = store
            let read = try store.dayHistory(since: since, until: until, top: settings.seriesShown)
            return .history(StatusHistory(firstDay: firstDay, lastDay: lastDay, days: read.days, users: read.users,
                                          models: read.models, limit: settings.seriesShown))
        } catch {
            // Opened again at the next query: the file may not exist yet (the writer creates it) or be replaced.
            store = nil
            opened = nil
            return .unavailable("the usage ledger cannot be read: \(error.description)")
        }
    }
}
