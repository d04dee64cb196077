import Glibc
import TollgateIO

/// Reads the status page's history from the usage ledger on a thread of its own: the query scans up to 30 days
/// of rows on disk, which no event loop may wait for. Loops ask with `read` (an append under a short lock) and get
/// their answer on this thread; they hop back to their loop themselves.
///
/// Requests that arrive together are answered by one query, and an answer is reused for `freshMillis`, so a page
/// reloaded in a loop, or opened by many at once, costs the disk one scan every few seconds at most. The database
/// is opened read-only on first use and again after a failure; a failure is an answer (`.unavailable`), never a
/// crash or a wait.
public final class StatusHistoryReader: @unchecked Sendable {
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
        /// How long an answer is reused.
        public var freshMillis: Int64 = 5000
        /// Requests waiting at most; past it a request is answered at once as unavailable.
        public var maxPending = 256
        /// Wall-clock time, Unix ms (injected by tests).
        public var clock: @Sendable () -> Int64 = UsageClock.nowMillis

        public init(path: String) {
            self.path = path
        }
    }

    private struct State {
        var pending: [@Sendable (Answer) -> Void] = []
        var stopping = false
    }

    public let settings: Settings
    private let lock = ConditionLock()
    private var state = State()
    private var thread: pthread_t?

    // Reader-thread state.
    private var store: UsageStore?
    private var cached: (at: Int64, history: StatusHistory)?

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
    public func read(_ completion: @escaping @Sendable (Answer) -> Void) {
        let refused: String? = lock.withLock {
            if state.stopping { return "the server is stopping" }
            if state.pending.count >= settings.maxPending { return "too many status pages are being prepared" }
            state.pending.append(completion)
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
                stopping = state.stopping
            }
            if !batch.isEmpty {
                let answer = history()
                for completion in batch { completion(answer) }
            }
            if stopping { break }
        }
        store = nil
    }

    /// The history now: the cached one while fresh, else one query.
    private func history() -> Answer {
        let now = settings.clock()
        if let cached, now >= cached.at, now - cached.at < settings.freshMillis { return .history(cached.history) }
        let lastDay = UsageClock.dayStart(now) / 86_400_000
        let firstDay = lastDay - Int64(max(1, settings.days)) + 1
        do throws(SQLiteError) {
            let store: UsageStore
            if let open = self.store { store = open } else { store = try UsageStore(reading: settings.path) }
            self.store = store
            lock.withLock { queriesRun += 1 }
            let lines = try store.daily(since: firstDay * 86_400_000)
            let history = StatusHistory(firstDay: firstDay, lastDay: lastDay, lines: lines)
            cached = (now, history)
            return .history(history)
        } catch {
            // Opened again at the next request: the file may not exist yet (the writer creates it) or be replaced.
            store = nil
            return .unavailable("the usage ledger cannot be read: \(error.description)")
        }
    }
}
