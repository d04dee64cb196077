import Glibc
import Synchronization
import TollgateIO

/// The usage ledger's writer: loops hand finished requests over (`record`: an append under a short lock, and a
/// wake-up only when the writer sleeps); one thread writes them to the `usage` table, each batch in one
/// transaction with one prepared insert, and deletes rows past `usage-retention` at start and once a day, a
/// thousand at a time.
///
/// A database that cannot be written (a full disk, a read-only file, another process's lock past the busy timeout,
/// a missing directory) never blocks or fails a request: the rows of that batch are dropped and counted by reason
/// (`tollgate_ledger_rows_dropped_total`), the first failure of an episode is logged with SQLite's message and the
/// file, and the writer reopens the database at the next batch after `retryMillis` (rows arriving meanwhile are
/// dropped with the same reason). When writing works again it says so once, with the count dropped. Rows that do
/// not fit in the queue (the writer far behind) are dropped as `queue_full`.
public final class UsageLedger: @unchecked Sendable {
    /// How the writer runs.
    public struct Settings: Sendable {
        /// The state database file.
        public var path: String
        /// Rows older than this are deleted; nil keeps them all.
        public var retentionSeconds: Int64?
        /// Rows queued at most; past it new rows are dropped.
        public var maxPending = 65_536
        /// How long a write waits for another connection's lock before its batch is dropped.
        public var busyTimeoutMillis: Int32 = 1000
        /// After a failure, how long until the database is opened again.
        public var retryMillis: Int64 = 1000
        /// How often retention runs.
        public var retentionEveryMillis: Int64 = 86_400_000
        /// After writing a batch, how long the writer lets the next rows gather (microseconds).
        public var gatherMicros: UInt32 = 20_000
        /// Wall-clock time, Unix ms (injected by tests).
        public var clock: @Sendable () -> Int64 = UsageClock.nowMillis

        public init(path: String, retentionSeconds: Int64?) {
            self.path = path
            self.retentionSeconds = retentionSeconds
        }
    }

    /// Why rows were not written: the label values of `tollgate_ledger_rows_dropped_total`, in order.
    public static let dropReasons = ["queue_full", "busy", "readonly", "full", "io", "corrupt", "cantopen", "error"]

    private struct State {
        var pending: [UsageRow] = []
        /// The writer waits for a wake-up: the next `record` posts one.
        var idle = false
        var stopping = false
        var written = 0
        var dropped = [Int](repeating: 0, count: UsageLedger.dropReasons.count)
        /// Rows dropped as `queue_full` since the writer last looked.
        var unreportedQueueFull = 0
        /// `sync` calls made; the writer has finished every one up to `synced`.
        var syncRequested: UInt64 = 0
    }

    public let settings: Settings
    private let state = Mutex(State())
    private let wake: WakeChannel
    private let synced = ConditionLock()
    private var syncedUpTo: UInt64 = 0
    private var thread: pthread_t?

    // Writer-thread state.
    private var store: UsageStore?
    private var retryAt: Int64 = 0
    private var nextRetention: Int64 = 0
    /// The failure of the episode under way (nil: writing works), and the rows dropped since it began.
    private var failing: SQLiteError?
    private var droppedInEpisode = 0
    private var queueFullEpisode = false

    /// Starts the writer thread. The database is opened (and created) by that thread, never here: a database that
    /// cannot be opened is an episode like any other, logged, and retried.
    public init(settings: Settings) throws(SocketError) {
        self.settings = settings
        guard let channel = WakeChannel() else { throw SocketError("cannot create the usage ledger's wake-up channel") }
        wake = channel
        thread = spawnThread(name: "tollgate-ledger") { [self] in run() }
    }

    /// Queues one row; never blocks on I/O (an append under a short lock; a wake-up write only when the writer is
    /// asleep). Any thread.
    public func record(_ row: UsageRow) {
        let post = state.withLock { s -> Bool in
            guard s.pending.count < settings.maxPending, !s.stopping else {
                s.dropped[0] += 1
                s.unreportedQueueFull += 1
                return false
            }
            s.pending.append(row)
            guard s.idle else { return false }
            s.idle = false
            return true
        }
        if post { wake.post() }
    }

    /// Rows written since start.
    public var written: Int { state.withLock { $0.written } }

    /// Rows dropped since start, by reason (every reason of `dropReasons`, 0 when none).
    public var dropped: [String: Int] {
        let counts = state.withLock { $0.dropped }
        return Dictionary(uniqueKeysWithValues: zip(UsageLedger.dropReasons, counts))
    }

    /// The ledger's series for `/metrics`.
    func metricsText() -> String {
        let (written, dropped) = state.withLock { ($0.written, $0.dropped) }
        var text = "# HELP tollgate_ledger_rows_written_total Usage rows written to the state database.\n"
            + "# TYPE tollgate_ledger_rows_written_total counter\n"
            + "tollgate_ledger_rows_written_total \(written)\n"
            + "# HELP tollgate_ledger_rows_dropped_total Usage rows not written, by reason (the database or the queue).\n"
            + "# TYPE tollgate_ledger_rows_dropped_total counter\n"
        for (reason, n) in zip(UsageLedger.dropReasons, dropped) {
            text += "tollgate_ledger_rows_dropped_total{reason=\"\(reason)\"} \(n)\n"
        }
        return text
    }

    /// Blocks until every row recorded before this call is written or dropped, and retention has run if it was
    /// due. For tests and for the shutdown; never on an event loop.
    public func sync() {
        let ticket = state.withLock { s -> UInt64 in
            s.syncRequested += 1
            s.idle = false
            return s.syncRequested
        }
        wake.post()
        _ = synced.wait(until: .max) { syncedUpTo >= ticket }
    }

    /// Writes what is queued, then stops the thread and closes the database. Idempotent.
    public func stop() {
        let first = state.withLock { s -> Bool in
            defer { s.stopping = true }
            return !s.stopping
        }
        guard first else { return }
        wake.post()
        if let thread { pthread_join(thread, nil) }
        thread = nil
        wake.close()
    }

    // MARK: the writer thread

    private func run() {
        nextRetention = settings.clock()
        while true {
            let (batch, stopping, ticket, queueFull) = state.withLock { s -> ([UsageRow], Bool, UInt64, Int) in
                let batch = s.pending
                s.pending.removeAll(keepingCapacity: true)
                let queueFull = s.unreportedQueueFull
                s.unreportedQueueFull = 0
                if batch.isEmpty && !s.stopping && s.syncRequested == syncedUpTo { s.idle = true }
                return (batch, s.stopping, s.syncRequested, queueFull)
            }
            if queueFull > 0 && !queueFullEpisode {
                queueFullEpisode = true
                Diagnostics.warn("usage ledger: the writer fell behind; \(queueFull) row(s) dropped "
                                 + "(tollgate_ledger_rows_dropped_total{reason=\"queue_full\"})")
            } else if queueFull == 0 && !batch.isEmpty {
                queueFullEpisode = false
            }
            if !batch.isEmpty {
                write(batch)
                // Let the next rows gather for a moment: fewer, larger transactions cost the loops' cores less.
                if !stopping && settings.gatherMicros > 0 { usleep(settings.gatherMicros) }
            }
            if settings.retentionSeconds != nil && settings.clock() >= nextRetention { applyRetention() }
            if ticket > syncedUpTo {
                synced.withLock { syncedUpTo = ticket }
                synced.broadcast()
            }
            if stopping {
                let empty = state.withLock { $0.pending.isEmpty }
                if empty { break }
                continue
            }
            if batch.isEmpty && ticket == syncedUpTo { waitForWork() }
        }
        store = nil
        synced.withLock { syncedUpTo = .max }
        synced.broadcast()
    }

    /// Sleeps until a row or `stop` arrives, or until retention is due.
    private func waitForWork() {
        let idle = state.withLock { $0.idle }
        guard idle else { return }
        var timeout: Int32 = 3_600_000
        if settings.retentionSeconds != nil {
            let due = nextRetention - settings.clock()
            timeout = Int32(max(0, min(due, 3_600_000)))
        }
        var fd = pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)
        if poll(&fd, 1, timeout) > 0 { wake.drain() }
        state.withLock { $0.idle = false }
    }

    /// The store, opened when it is not (and a retry is due); nil when it cannot be.
    private func openStore() -> UsageStore? {
        if let store { return store }
        guard settings.clock() >= retryAt else { return nil }
        do {
            store = try UsageStore(writing: settings.path, busyTimeoutMillis: settings.busyTimeoutMillis)
        } catch {
            failed(error, rows: 0)
        }
        return store
    }

    private func write(_ batch: [UsageRow]) {
        guard let store = openStore() else {
            drop(batch.count, reason: failing?.reason ?? "error")
            return
        }
        do {
            try store.insert(batch)
            state.withLock { $0.written += batch.count }
            if let failing {
                Diagnostics.info("usage ledger: writing \(settings.path) again (\(droppedInEpisode) row(s) were "
                                 + "dropped while \(failing.reason))")
                self.failing = nil
                droppedInEpisode = 0
            }
        } catch {
            failed(error, rows: batch.count)
        }
    }

    /// A failure: the rows are dropped, the episode is reported once, the connection closed and retried later.
    private func failed(_ error: SQLiteError, rows: Int) {
        drop(rows, reason: error.reason)
        if failing == nil {
            Diagnostics.error("usage ledger: \(error.description); dropping usage rows until it can be written "
                              + "(tollgate_ledger_rows_dropped_total{reason=\"\(error.reason)\"})")
        }
        failing = error
        store = nil
        retryAt = settings.clock() + settings.retryMillis
    }

    private func drop(_ rows: Int, reason: String) {
        guard rows > 0 else { return }
        let index = UsageLedger.dropReasons.firstIndex(of: reason) ?? UsageLedger.dropReasons.count - 1
        state.withLock { $0.dropped[index] += rows }
        droppedInEpisode += rows
    }

    /// Deletes rows past the retention, a batch per transaction, so that no write waits long behind it.
    private func applyRetention() {
        guard let seconds = settings.retentionSeconds, let store = openStore() else { return }
        let now = settings.clock()
        nextRetention = now + settings.retentionEveryMillis
        let cutoff = now - seconds * 1000
        var deleted = 0
        do {
            while true {
                let n = try store.deleteOlder(than: cutoff)
                deleted += n
                guard n >= 1000 else { break }
                // Rows that arrived meanwhile go first: retention can wait, the queue should not grow.
                let waiting = state.withLock { !$0.pending.isEmpty }
                if waiting {
                    nextRetention = now
                    break
                }
            }
        } catch {
            Diagnostics.warn("usage ledger: retention: \(error.description); trying again in an hour")
            nextRetention = now + 3_600_000
        }
        if deleted > 0 { Diagnostics.info("usage ledger: deleted \(deleted) row(s) older than the retention") }
    }
}
