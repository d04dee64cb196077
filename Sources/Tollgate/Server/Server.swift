import CTollgate
import Glibc
import Synchronization
import TollgateIO

/// The running proxy: one event loop per worker thread, each with its own listeners (SO_REUSEPORT) and upstream
/// pool. Start with `start`, stop with `shutdown` (graceful drain) from any thread, wait with `waitUntilStopped`.
public final class Server: @unchecked Sendable {
    /// The configuration in force (a reload replaces it). Read it from one thread at a time (start-up, the
    /// signal thread).
    public internal(set) var config: ServerConfig
    /// The addresses actually bound (port 0 resolved), for tests and the start-up message.
    public private(set) var tlsAddresses: [SocketAddress] = []
    public private(set) var plainAddresses: [SocketAddress] = []
    public private(set) var redirectAddresses: [SocketAddress] = []
    public private(set) var metricsAddresses: [SocketAddress] = []
    /// Prometheus metrics for every worker.
    public let metrics: Metrics
    /// The certificate's expiry (seconds since the epoch), when TLS is on.
    public let certificateNotAfter: Int64?

    /// The password checker shared by every loop (nil when authentication is off).
    public let authenticator: Authenticator?
    /// Logins with `ollama` CLI keys, shared by every loop (nil without `authorized-keys` or authentication).
    public let signedLogins: SignedLogins?
    /// The API keys' snapshot shared by every loop (nil without a key store or without authentication).
    public let keyRing: KeyRing?
    /// Keeps `keyRing` in step with the key store, and writes the keys' last-use times.
    private let keyWatcher: KeyWatcher?
    /// The per-IP limiter shared by every loop (nil when off).
    public let rateLimiter: RateLimiter?
    /// The inference concurrency limiter shared by every loop (nil when off).
    public let concurrency: ConcurrencyLimiter?
    /// Every user's token and request balances (the `policy` quotas), shared by every loop. Seed it from the usage
    /// ledger (`QuotaBook.seed(from:)`) before `run`, so that a restart forgets no spending.
    public let quotaBook: QuotaBook
    /// The state of the Redis-shared limits (nil when `redis` is unset).
    public let sharedStatus: SharedLimitsStatus?
    /// Inference requests waiting for a shared slot, over every worker (0 without Redis).
    public var sharedQueued: Int { sharedQueue.value }
    private let sharedQueue: SharedCount
    /// The access log's writer (nil when logging is off).
    public let logSink: LogSink?
    /// The usage ledger's writer (nil when `ledger` is off or no state database is configured).
    public let ledger: UsageLedger?
    /// This instance's id in the fleet's quota balances (`FleetMember`).
    public let fleetMember: String
    /// The lock on the state directory (the database's), held as long as this server lives: no other process can
    /// serve from the directory meanwhile; other servers in this process share it (`StateLock`). Nil without a
    /// database, or, with the ledger off, when the lock file cannot be made (said once).
    public let stateLock: StateLock?
    /// The status page's reader of the ledger (nil with the ledger off); its thread starts at the first page.
    public let statusHistory: StatusHistoryReader?
    /// The Ollama backends shared by every loop, with several upstreams (or a `max=`); nil on the single path.
    public let backends: BackendSet?
    private var healthChecker: HealthChecker?
    private var watcher: UsersFileWatcher?
    private var keysWatcher: FileWatcher<AuthorizedKeys>?
    /// Obtains and renews the certificate from the ACME CA (nil without `acme-domain`).
    public internal(set) var acme: ACMEManager?
    /// The clock the ACME thread plans and sleeps by (set before `start`; nil: the system's). Tests drive it.
    public var acmeClock: (any ACMEClock)?
    var workers: [Worker] = []
    private var listeners: [[Listener]] = []
    private var threads: [pthread_t] = []
    /// Each worker's OpenSSL library context, in worker order (empty without a TLS listener).
    var tlsLibraries: [TLSLibrary] = []
    /// The certificate and key the workers serve (a reload compares the files it reads with them).
    let servedCertificate = Mutex<TLSCertificate?>(nil)
    private let stopped = Mutex<Int>(0)
    private let shuttingDown = Atomic<Bool>(false)
    /// Held by `waitUntilStopped` while it stops what the loops used.
    private let stopping = Mutex<Void>(())

    /// Loads the certificate, creates the loops and binds every listener; fails with a clear message. `keyStore`
    /// holds the API keys (the state directory's database; memory in tests): they are loaded now and followed by a
    /// watcher thread; `fleetRevocations` shares revocations through Redis. `quotaBook`: where the quotas are kept
    /// (tests give one with their own clock).
    public init(config: ServerConfig, keyStore: (any KeyStore)? = nil,
                fleetRevocations: (any FleetRevocations)? = nil,
                quotaBook: QuotaBook = QuotaBook()) throws(SocketError) {
        self.config = config
        self.quotaBook = quotaBook
        // First of all: a server refused because another one serves from the directory opens nothing in it.
        stateLock = try config.databasePath.flatMap { path throws(SocketError) in
            try StateLock.forServer(databasePath: path, required: config.ledgerEnabled) { Diagnostics.warn($0) }
        }
        // Each worker gets a TLS context of its own, in an OpenSSL library context of its own (see TLSLibrary),
        // all built from one reading of the files; the first is built here so a bad pair fails before any loop.
        var certificate: TLSCertificate?
        var firstTLS: TLSContext?
        if !config.listen.isEmpty {
            guard let cert = config.certificatePath, let key = config.keyPath else {
                throw SocketError("a TLS listener needs --cert and --key")
            }
            let loaded = try TLSCertificate(certificatePath: cert, keyPath: key)
            certificate = loaded
            firstTLS = try TLSContext(certificate: loaded, library: TLSLibrary(),
                                      answersACMEChallenges: !config.acmeDomains.isEmpty)
        }
        certificateNotAfter = certificate?.notAfter
        // With Redis the throttle is fleet-wide; the local one is its `local` fallback, at limit/N, and speaks only
        // while it is the one deciding.
        let count = max(1, config.workers)
        let sharedStatus = config.sharedLimits.map { SharedLimitsStatus(address: $0.redis.redactedURL, workers: count) }
        self.sharedStatus = sharedStatus
        var localAuth = config.authSettings
        if let shared = config.sharedLimits, localAuth.failureLimit > 0 {
            localAuth.failureLimit = shared.share(localAuth.failureLimit)
        }
        let authenticator = config.users.map { users in
            Authenticator(users: users, settings: localAuth, clock: { Syscall.monotonicNanos() }, onThrottle: { subject, seconds in
                if let sharedStatus, !sharedStatus.isInFallback(.login) { return }
                Diagnostics.warn("client \(subject) throttled for \(seconds) s after repeated failed logins")
            }, verifier: config.passwordVerifier ?? PasswordVerifier.verify)
        }
        self.authenticator = authenticator
        let signedLogins = authenticator == nil ? nil : config.authorizedKeys.map { SignedLogins(keys: $0) }
        self.signedLogins = signedLogins
        let rateLimiter = config.rateLimit.map { RateLimiter(settings: $0) }
        self.rateLimiter = rateLimiter
        // With Redis the slots are leases; this local limiter is then the `local` fallback, at caps/N.
        let concurrency = config.concurrency.map { c in
            ConcurrencyLimiter(settings: config.sharedLimits.map { $0.fallbackConcurrency(c) } ?? c)
        }
        self.concurrency = concurrency
        // Always made: a reload may bring a `policy` line with a rate (the `UserRate` phase is on only when some rate
        // applies; the table allocates as users come).
        let userRate = UserRateLimiter(ratePerSecond: config.userRate?.rate ?? 1, burst: config.userBurst, maxKeys: 100_000)
        // The Redis host is resolved here, once, before any loop runs (never on a loop).
        let redisAddress: SocketAddress?
        do throws(SocketError) {
            redisAddress = try config.sharedLimits.map { shared throws(SocketError) in try shared.redis.resolve() }
        } catch {
            throw SocketError("redis: \(error.description)")
        }
        let fallbackRate: RateLimiter? = config.sharedLimits.flatMap { shared in
            config.rateLimit.map { RateLimiter(settings: shared.fallbackRate($0)) }
        }
        let queuedTotal = SharedCount()
        // One "denied until" cache per shared limiter for the whole process: a rejection learned on one loop
        // answers every loop.
        let rateDenials = SharedDenials()
        let loginDenials = SharedDenials()
        let heldTotal = SharedCount()
        sharedQueue = queuedTotal
        let logSink = config.accessLog == .none ? nil : try LogSink(path: config.accessLogPath)
        self.logSink = logSink
        var ledger: UsageLedger?
        if config.ledgerEnabled, let path = config.databasePath {
            do {
                ledger = try UsageLedger(settings: .init(path: path, retentionSeconds: config.usageRetentionSeconds))
            } catch {
                logSink?.stop()
                throw error
            }
        }
        self.ledger = ledger
        // With a ledger, this instance's spending outlives a restart, and so must the id it joins the fleet's
        // balances under (a restarted member adds nothing again).
        if config.sharedLimits != nil, ledger != nil, let path = config.databasePath {
            let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
            do {
                fleetMember = try FleetMember.id(stateDirectory: directory.isEmpty ? "/" : directory) {
                    Diagnostics.warn("quotas: \($0)")
                }
            } catch {
                ledger?.stop()
                logSink?.stop()
                throw error
            }
        } else {
            fleetMember = FleetMember.random()
        }
        let statusHistory = ledger.map { StatusHistoryReader(settings: .init(path: $0.settings.path)) }
        self.statusHistory = statusHistory
        let backends = config.usesBackendSet ? BackendSet(config: config) : nil
        self.backends = backends
        let fileLimit = Syscall.raiseFileLimit()
        let connectionLimiter = Server.connectionLimiter(config, fileLimit: fileLimit)
        // OpenSSL writes with write(2): a peer that vanished mid-write must not kill the process.
        signal(SIGPIPE, SIG_IGN)
        metrics = Metrics(workers: count)
        metrics.setCertificateExpiry(certificate?.notAfter)
        servedCertificate.withLock { $0 = certificate }
        // Last before the loops: the watcher's thread starts here, and every failure after this point stops it.
        if let keyStore, config.users != nil {
            let ring = KeyRing()
            do {
                keyWatcher = try KeyWatcher(store: keyStore, ring: ring, fleet: fleetRevocations)
            } catch {
                logSink?.stop()
                authenticator?.shutdown()
                throw SocketError("keys: \(error.description)")
            }
            keyRing = ring
        } else {
            keyRing = nil
            keyWatcher = nil
        }
        do throws(SocketError) {
            for i in 0..<count {
                let loop = try EventLoop(index: i)
                var tls = firstTLS
                if i > 0, let certificate {
                    tls = try TLSContext(certificate: certificate, library: TLSLibrary(),
                                         answersACMEChallenges: !config.acmeDomains.isEmpty)
                }
                if let tls { tlsLibraries.append(tls.library) }
                workers.append(Worker(loop: loop, config: config, tls: tls, authenticator: authenticator,
                                      rateLimiter: rateLimiter, concurrency: concurrency, userRateLimiter: userRate,
                                      logSink: logSink, keys: keyRing))
                workers[i].metrics = metrics
                workers[i].signedLogins = signedLogins
                workers[i].quotaBook = quotaBook
                workers[i].ledger = ledger
                workers[i].statusHistory = statusHistory
                if let shared = config.sharedLimits, let redisAddress, let sharedStatus {
                    workers[i].shared = SharedLimits(settings: shared, address: redisAddress, loop: loop,
                                                     status: sharedStatus, rateSettings: config.rateLimit,
                                                     fallbackRate: fallbackRate,
                                                     authSettings: config.users == nil ? nil : config.authSettings,
                                                     concurrency: config.concurrency,
                                                     fallbackConcurrency: concurrency, queuedTotal: queuedTotal,
                                                     heldTotal: heldTotal, rateDenials: rateDenials,
                                                     loginDenials: loginDenials, quotaBook: quotaBook,
                                                     fleetMember: fleetMember)
                }
                workers[i].peers = UpstreamPeers(backendSet: backends)
                workers[i].connectionLimiter = connectionLimiter
                listeners.append([])
            }
            // Bind the first loop's socket, read back the port (port 0 in tests), bind the others to the same port.
            func bindAll(_ addresses: [SocketAddress], _ kind: ClientConnection.Kind) throws(SocketError) -> [SocketAddress] {
                var bound: [SocketAddress] = []
                for var address in addresses {
                    for i in 0..<count {
                        let fd = try Socket.listen(on: address, reusePort: true)
                        if i == 0, let actual = Socket.localAddress(fd) { address = actual }
                        listeners[i].append(Listener(worker: workers[i], fd: fd, kind: kind))
                    }
                    bound.append(address)
                }
                return bound
            }
            tlsAddresses = try bindAll(config.listen, .tls)
            plainAddresses = try bindAll(config.listenPlain, .plain)
            redirectAddresses = try bindAll(config.listenRedirect, .redirect)
            do {
                metricsAddresses = try bindAll(config.metricsListen, .metrics)
            } catch where config.metricsListenOptional {
                for list in listeners { for l in list where l.kind == .metrics { l.close() } }
                for i in listeners.indices { listeners[i].removeAll { $0.kind == .metrics } }
                Diagnostics.warn("\(error.description); serving without metrics (give --metrics-listen to choose an address)")
            }
            let httpsPort = config.redirectPort ?? tlsAddresses.first?.port ?? 443
            for w in workers { w.redirectPort = httpsPort }
        } catch {
            for list in listeners { for l in list { l.close() } }
            authenticator?.shutdown()
            keyWatcher?.stop()
            logSink?.stop()
            ledger?.stop()
            throw error
        }
        if config.listen.isEmpty && config.listenPlain.isEmpty {
            keyWatcher?.stop()
            throw SocketError("nothing to listen on: give --listen or --listen-plain")
        }
    }

    /// Starts one thread per loop, and the users-file watcher.
    public func start() {
        Diagnostics.prepareWriter()
        // The session cache is the process's, and its size the default until a server is configured otherwise (a
        // server with the default leaves a size another server of the same process set, as tests run several).
        if config.tlsSessionCacheBytes != TLSSessionCache.defaultBytes {
            TLSSessionCache.setBytes(config.tlsSessionCacheBytes)
        }
        if let path = config.usersPath, let authenticator {
            do {
                watcher = try UsersFileWatcher(path: path) { result in
                    switch result {
                    case .success(let users):
                        authenticator.replaceUsers(users)
                        self.metrics.reloaded("users", ok: true)
                        Diagnostics.info("reloaded \(path): \(users.summary)")
                        for w in WarnOnce.process.fresh(users.warnings) { Diagnostics.warn(w.description) }
                    case .failure(let error):
                        self.metrics.reloaded("users", ok: false)
                        Diagnostics.error("\(error.description); keeping the previous users")
                    }
                }
            } catch {
                Diagnostics.warn("\(error.description); users-file changes need a restart")
            }
        }
        if let path = config.authorizedKeysPath, let signedLogins {
            do {
                // Logged once per disappearance, not on every reload attempt while it stays gone.
                let gone = Atomic<Bool>(false)
                keysWatcher = try FileWatcher(path: path, parse: { AuthorizedKeys.parse(bytes: $0, path: $1) }) { result in
                    switch result {
                    case .success(let keys):
                        gone.store(false, ordering: .relaxed)
                        signedLogins.replaceKeys(keys)
                        self.metrics.reloaded("authorized-keys", ok: true)
                        Diagnostics.info("reloaded \(path): \(keys.summary)")
                        for w in WarnOnce.process.fresh(keys.warnings) { Diagnostics.warn(w.description) }
                    case .failure(let error) where error.missing:
                        // A deleted key file revokes every key: keeping the old ones would keep a key the admin
                        // meant to remove (an unreadable file, below, is a mistake mid-edit: the keys stay).
                        signedLogins.replaceKeys(AuthorizedKeys(path: path, keys: [:], warnings: []))
                        self.metrics.reloaded("authorized-keys", ok: false)
                        if !gone.exchange(true, ordering: .relaxed) {
                            Diagnostics.warn("\(error.description); no ollama keys are accepted until it is back")
                        }
                    case .failure(let error):
                        self.metrics.reloaded("authorized-keys", ok: false)
                        Diagnostics.error("\(error.description); keeping the previous authorized keys")
                    }
                }
            } catch {
                Diagnostics.warn("\(error.description); authorized-keys changes need a restart")
            }
        }
        startACME()
        // Queue timeouts: every loop sweeps the process-wide wait queues (whichever comes first expires a waiter, which
        // hops back to its own loop). Not one loop for all: a draining loop stops once its own connections are done,
        // and the requests still queued on the others would then wait past their timeout.
        let queues: [any TimedWaitQueue] = [concurrency as (any TimedWaitQueue)?, backends].compactMap { $0 }
        if !queues.isEmpty {
            for worker in workers {
                let loop = UncheckedBox(worker.loop)
                @Sendable func sweep() {
                    let nowMillis = loop.value.now / 1_000_000
                    for queue in queues { queue.expire(nowMillis: nowMillis) }
                    loop.value.schedule(afterNanos: ConcurrencyLimiter.sweepNanos) { sweep() }
                }
                worker.loop.execute { sweep() }
            }
        }
        if let backends, let first = workers.first {
            // Health checks run on the first loop.
            let checker = HealthChecker(set: backends, loop: first.loop, intervalSeconds: config.healthInterval)
            healthChecker = checker
            first.loop.execute { checker.start() }
        }
        // Memory back to baseline after a burst: once the open connections have fallen to half their peak, each
        // loop drops its spare buffers and the allocator returns freed pages to the kernel.
        let all = UncheckedBox(workers)
        let peak = Atomic<Int>(0)
        let trimLoop = UncheckedBox(workers[0].loop)
        let metrics = self.metrics
        @Sendable func trimTick() {
            let open = metrics.openConnections
            if open > peak.load(ordering: .relaxed) { peak.store(open, ordering: .relaxed) }
            let high = peak.load(ordering: .relaxed)
            if high >= 64 && open * 2 <= high {
                peak.store(open, ordering: .relaxed)
                for w in all.value {
                    let box = UncheckedBox(w)
                    w.loop.execute { box.value.shrinkPools() }
                }
                trimLoop.value.schedule(afterNanos: 100_000_000) { _ = tg_malloc_trim() }
            }
            trimLoop.value.schedule(afterNanos: 5_000_000_000) { trimTick() }
        }
        workers[0].loop.execute { trimTick() }
        for (i, worker) in workers.enumerated() {
            let w = UncheckedBox(worker)
            worker.onDrained = { [self] in
                for l in listeners[i] { l.close() }
                w.value.log.flush()
                // The drain's last slot releases must reach Redis, or the fleet waits a lease time for them.
                if let shared = w.value.shared {
                    shared.closeWhenAnswered { w.value.loop.stop() }
                } else {
                    w.value.loop.stop()
                }
            }
            if worker.shared != nil { worker.loop.execute { w.value.shared?.start() } }
            threads.append(spawnThread(name: "tollgate-\(i)") { [self] in
                w.value.loop.run()
                w.value.log.flush()
                stopped.withLock { $0 += 1 }
            })
        }
    }

    /// Graceful stop, from any thread: listeners close, idle connections close, in-flight requests get up to
    /// `graceSeconds` to finish, then everything left is closed and the loops exit.
    public func shutdown(graceSeconds: Double? = nil) {
        guard !shuttingDown.exchange(true, ordering: .relaxed) else { return }
        let grace = graceSeconds ?? config.drainGraceSeconds
        if let checker = healthChecker {
            checker.loop.execute { checker.stop() }
        }
        for (i, worker) in workers.enumerated() {
            let w = UncheckedBox(worker)
            let ls = UncheckedBox(listeners[i])
            worker.loop.execute {
                for l in ls.value { l.close() }
                w.value.beginDrain()
                w.value.loop.schedule(afterNanos: UInt64(grace * 1_000_000_000)) {
                    w.value.forceClose()
                }
            }
        }
    }

    /// Passes through `epoll_wait` of each loop so far: tests assert that a loop is not spinning by how little this
    /// grows while an attack is held.
    public var loopIterations: [UInt64] { workers.map { $0.loop.iterations } }

    /// Blocks until every loop has exited, then stops the watcher and the password-checking threads. Callable from
    /// several threads and more than once: a later call waits for the first to finish and finds nothing left to stop
    /// (joining a thread twice, or closing a descriptor twice, would act on whatever reused it).
    public func waitUntilStopped() {
        stopping.withLock { _ in stopEverything() }
    }

    private func stopEverything() {
        for t in threads { pthread_join(t, nil) }
        Diagnostics.flush()
        threads.removeAll()
        watcher?.stop()
        watcher = nil
        keysWatcher?.stop()
        keysWatcher = nil
        keyWatcher?.stop()
        acme?.stop()
        authenticator?.shutdown()
        logSink?.stop()
        // After the loops: every finished request's row is queued; stop writes them before the thread ends.
        ledger?.stop()
        statusHistory?.stop()
    }

    /// Runs one round of backend health checks and model polls that starts after this call, and calls `done`
    /// (on the checking loop) when it has finished; at once when there is no backend set. For tests and operators.
    public func checkBackendsNow(_ done: @escaping @Sendable () -> Void) {
        guard let healthChecker else {
            done()
            return
        }
        healthChecker.checkNow(done)
    }

    /// Re-reads the users file and the `authorized-keys` now (SIGHUP).
    public func reloadUsers() {
        watcher?.reloadNow()
        keysWatcher?.reloadNow()
    }
}

/// Moves a loop-confined value into a closure that runs on that loop.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

private final class ThreadBody {
    let name: String
    let body: () -> Void
    init(_ name: String, _ body: @escaping () -> Void) {
        self.name = name
        self.body = body
    }
}

/// Starts a pthread running body. Lives in the library, not main.swift, so the closure is not main-actor isolated.
extension Server {
    /// The connection caps: `max-connections` (nil: derived from the open-file limit, as HAProxy derives its
    /// maxconn from ulimit-n: each proxied connection takes two descriptors, and a reserve stays for listeners,
    /// files and Redis), `max-connections-per-client`. Nil when both are off.
    static func connectionLimiter(_ config: ServerConfig, fileLimit: UInt64) -> ConnectionLimiter? {
        let total = config.maxConnections ?? (fileLimit > 0 ? max(64, (Int(min(fileLimit, 1 << 30)) - 256) / 2) : 0)
        guard total > 0 || config.maxConnectionsPerClient > 0 else { return nil }
        return ConnectionLimiter(maxTotal: total, maxPerClient: config.maxConnectionsPerClient,
                                 ipv6PrefixLength: config.rateLimit?.ipv6PrefixLength ?? 64)
    }
}

nonisolated func spawnThread(name: String, _ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(name, body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { arg in
        // Tollgate's threads never take the signals the signal thread waits for, whatever the caller's mask.
        var set = Signals.handled
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        tg_set_thread_name(body.name)
        body.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    tg_name_thread(thread, name)
    return thread
}
