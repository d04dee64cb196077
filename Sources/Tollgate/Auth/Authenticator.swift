import Glibc
import Synchronization
import TollgateIO

/// The authenticator the connections call: a cheap `check` on the event loop, password hashing on a small pool of
/// worker threads, a verified-credential cache in front, failed-login throttling per client prefix and user.
///
/// `check` parses nothing and never blocks: it answers from the throttle table or the cache when it can, otherwise
/// it queues one hash computation and returns `.pending`; `completion` then runs on a pool thread (hop back to
/// your loop from there). Identical concurrent checks (same user, stored hash and password) share one computation.
/// The queue is bounded: past `queueLimit`, `.overloaded`. An unknown user costs one verification of one of the
/// users file's stand-in hashes (`UsersFile.standIn(for:)`) and gets `.denied`, exactly like a wrong password.
/// `replaceUsers` swaps the users atomically; checks already queued finish against the users they started with.
///
/// Thread-safe. Call `shutdown` before releasing it (the pool threads hold it), and never from a completion.
public final class Authenticator: @unchecked Sendable {
    /// The result of `check`: an answer now, or later through the completion.
    public enum Check: Sendable, Equatable {
        /// Answered on the spot; the completion will not be called.
        case done(AuthOutcome)
        /// Queued; the completion will be called exactly once, on a pool thread.
        case pending
    }

    /// The settings in force.
    public let settings: Settings
    /// The verified-credential cache (exposed for metrics and for `removeAll`).
    public let cache: CredentialCache
    let clock: @Sendable () -> UInt64
    private let verifier: @Sendable (_ password: [UInt8], _ hash: String, _ format: HashFormat) -> Bool
    let onThrottle: (@Sendable (_ subject: String, _ retryAfterSeconds: Int) -> Void)?
    let state: Mutex<State>
    private let wake: WakeChannel
    private var threads: [pthread_t] = []

    /// Starts `settings.workers` pool threads. `clock` is monotonic nanoseconds (inject one in tests).
    /// `onThrottle`, if given, is called once each time a client prefix, or a user from one, becomes throttled
    /// (to log it once), on whichever thread recorded the failure; its first argument names what is throttled.
    public convenience init(
        users: UsersFile,
        settings: Settings = Settings(),
        clock: @escaping @Sendable () -> UInt64 = { Syscall.monotonicNanos() },
        onThrottle: (@Sendable (_ subject: String, _ retryAfterSeconds: Int) -> Void)? = nil
    ) {
        self.init(users: users, settings: settings, clock: clock, onThrottle: onThrottle,
                  verifier: PasswordVerifier.verify)
    }

    /// As above with the password check replaced (tests gate it to make concurrency deterministic).
    init(
        users: UsersFile,
        settings: Settings,
        clock: @escaping @Sendable () -> UInt64,
        onThrottle: (@Sendable (_ subject: String, _ retryAfterSeconds: Int) -> Void)?,
        verifier: @escaping @Sendable (_ password: [UInt8], _ hash: String, _ format: HashFormat) -> Bool
    ) {
        self.settings = settings
        self.verifier = verifier
        self.clock = clock
        self.onThrottle = onThrottle
        cache = CredentialCache(maxEntries: settings.cacheEntries, ttlNanos: Settings.nanos(settings.cacheTTLSeconds))
        let throttle = LoginThrottle(userLimit: settings.failureLimit,
                                     windowNanos: Settings.nanos(settings.failureWindowSeconds),
                                     verifiedNanos: Settings.nanos(settings.cacheTTLSeconds))
        state = Mutex(State(users: users, throttle: throttle))
        guard let channel = WakeChannel() else { fatalError("authenticator: cannot create its wake-up socket pair") }
        wake = channel
        for i in 0..<max(1, settings.workers) {
            threads.append(spawnThread(name: "tollgate-auth-\(i)") { [self] in runWorker() })
        }
    }

    /// Checks `credentials` for a request from `clientIP`. Cheap and non-blocking: call on the event loop.
    /// `throttle` false skips the local failed-login throttle's refusal (the fleet-wide one in Redis decided);
    /// failures are still recorded locally, ready for when the fleet-wide one is unavailable.
    ///
    /// A credential the cache already knows to be right, and that was verified from this client prefix, is allowed
    /// even while the prefix or (prefix, user) is throttled: it caused none of the failures (only wrong passwords
    /// are counted), so a neighbour behind the same NAT guessing, or a stale password in someone's chat UI, does not
    /// lock out a user who is logged in. Anything else from a throttled client is refused without a check, a cached
    /// wrong password included, and so is a cached right one first seen from another prefix (see `LoginThrottle`).
    public func check(
        _ credentials: Credentials, clientIP: String, throttle: Bool = true,
        completion: @escaping @Sendable (AuthOutcome) -> Void
    ) -> Check {
        let now = clock()
        // The user's entry only: a copy of the whole users file would retain each of its buffers, which every
        // worker shares (one contended reference count each, per request). The file is taken only for a stand-in.
        let (entry, users) = state.withLock { s -> (UserEntry?, UsersFile?) in
            if let entry = s.users.entries[credentials.user] { return (entry, nil) }
            return (nil, s.users)
        }
        let standIn = users?.standIn(for: credentials.user)
        let hash = entry?.hash ?? standIn!.hash
        let format = entry?.format ?? standIn!.format
        // The HMAC runs outside the lock; the users snapshot above is what this check started with.
        let key = cache.makeKey(user: credentials.user, storedHash: hash, password: credentials.password)
        let login = LoginThrottle.Key(clientIP: clientIP, user: credentials.user)
        var newlyThrottled: (String, Int)?
        let answer: Check = state.withLock { s in
            if s.stopped { return .done(.overloaded) }
            let cached = cache.lookup(key, now: now)
            let refusal = throttle ? s.throttle.retryAfter(login, now: now) : nil
            // Only a listed user is ever allowed (a stand-in's verdict is never cached as right, see `runWorker`),
            // under the name as the users file writes it: Swift finds "jose\u{301}" under "jos\u{E9}", and what is
            // keyed by user outside this process (Redis, the ledger) compares bytes, so it must see one spelling.
            if cached == true, let entry, refusal == nil || s.throttle.wasVerified(login.prefix, credential: key, now: now) {
                s.stats.cacheHits += 1
                s.stats.allowed += 1
                s.throttle.recordSuccess(login.prefix, credential: key, now: now)
                return .done(.allowed(user: entry.name))
            }
            if let seconds = refusal {
                s.stats.throttled += 1
                return .done(.throttled(retryAfterSeconds: seconds))
            }
            if cached == false {
                s.stats.cacheHits += 1
                newlyThrottled = record(false, login, key: key, now: now, in: &s)
                return .done(.denied)
            }
            let waiter = Waiter(login: login, user: entry?.name ?? credentials.user, completion: completion)
            if s.inflight[key] != nil {
                s.inflight[key]!.append(waiter)
                s.stats.collapsed += 1
                return .pending
            }
            if s.queued >= settings.queueLimit {
                s.stats.overloaded += 1
                return .done(.overloaded)
            }
            s.inflight[key] = [waiter]
            s.enqueue(Job(key: key, password: credentials.password, hash: hash, format: format, knownUser: entry != nil))
            return .pending
        }
        if let (subject, seconds) = newlyThrottled { onThrottle?(subject, seconds) }
        if answer == .pending { wake.post() }
        return answer
    }

    /// Whether the cache knows `credentials` to be right and they were verified from `clientIP`'s prefix (no
    /// hashing, no counting): the fleet-wide throttle lets such a credential through without asking Redis, as the
    /// local one does.
    public func isVerified(_ credentials: Credentials, clientIP: String) -> Bool {
        guard let entry = state.withLock({ $0.users.entries[credentials.user] }) else { return false }
        let key = cache.makeKey(user: credentials.user, storedHash: entry.hash, password: credentials.password)
        let now = clock()
        let prefix = LoginThrottle.Key(clientIP: clientIP, user: credentials.user).prefix
        guard cache.lookup(key, now: now) == true else { return false }
        return state.withLock { $0.throttle.wasVerified(prefix, credential: key, now: now) }
    }

    /// Swaps in new users atomically (live reload). Cached verdicts for unchanged lines stay valid; those for
    /// changed or removed lines can no longer match, because the stored hash is part of the cache key.
    public func replaceUsers(_ users: UsersFile) {
        state.withLock { $0.users = users }
        generation.add(1, ordering: .releasing)
    }

    /// Changes whenever the users change: a connection that remembers a verified login re-checks after a change.
    public var usersGeneration: Int { generation.load(ordering: .acquiring) }
    let generation = Atomic<Int>(0)

    /// The users in force.
    public var users: UsersFile {
        state.withLock { $0.users }
    }

    /// Counters since creation.
    public var stats: Stats {
        state.withLock { $0.stats }
    }

    /// Stops the pool: queued checks complete with `.overloaded`, running ones finish, the threads are joined.
    /// Later checks answer `.overloaded`. Idempotent; never call it from a completion (it would wait for itself).
    public func shutdown() {
        let abandoned: [Waiter]? = state.withLock { s in
            if s.stopped { return nil }
            s.stopped = true
            return s.drainQueue()
        }
        guard let abandoned else { return }
        wake.post(threads.count)
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
        wake.close()
        for waiter in abandoned { waiter.completion(.overloaded) }
    }

    /// Counts an outcome; on a failure, records it for `login` and returns what to log when that failure starts
    /// a throttle: the subject (`203.0.113.9, user "alice"` or `2001:db8::/64, every user`) and its Retry-After.
    func record(_ valid: Bool, _ login: LoginThrottle.Key, key: [UInt8], now: UInt64,
                        in s: inout State) -> (String, Int)? {
        if valid {
            s.stats.allowed += 1
            s.throttle.recordSuccess(login.prefix, credential: key, now: now)
            return nil
        }
        s.stats.denied += 1
        guard let what = s.throttle.recordFailure(login, now: now) else { return nil }
        let subject = what == .prefix ? "\(login.prefixText), every user"
            : "\(login.prefixText), user \(login.user.debugDescription)"
        return (subject, s.throttle.retryAfter(login, now: now) ?? 1)
    }

    /// A pool thread: take a token, take a job, hash, publish the verdict to the cache and every waiter.
    private func runWorker() {
        while wake.wait() {
            let job: Job? = state.withLock { s in s.stopped && s.queued == 0 ? nil : s.dequeue() }
            guard let job else {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            // A stand-in's hash is random, so no password matches it; were one to, it is still no user.
            let valid = verifier(job.password, job.hash, job.format) && job.knownUser
            let now = clock()
            var throttledNow: [(String, Int)] = []
            let waiters: [Waiter] = state.withLock { s in
                s.stats.hashesComputed += 1
                if !job.knownUser { s.stats.dummyVerifications += 1 }
                // Cache before leaving the single-flight table, both under the lock, so an identical check either
                // joins this flight or hits the cache: never a second computation.
                cache.store(job.key, valid: valid, now: now)
                let waiters = s.inflight.removeValue(forKey: job.key) ?? []
                for waiter in waiters {
                    if let throttled = record(valid, waiter.login, key: job.key, now: now, in: &s) {
                        throttledNow.append(throttled)
                    }
                }
                return waiters
            }
            for (subject, seconds) in throttledNow { onThrottle?(subject, seconds) }
            for waiter in waiters { waiter.completion(valid ? .allowed(user: waiter.user) : .denied) }
        }
    }
}
