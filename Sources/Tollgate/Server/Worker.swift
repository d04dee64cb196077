import Glibc
import TollgateHTTP
import TollgateIO

/// Everything one event loop's connections share: config, parsers, scratch storage, the upstream pool and the log.
///
/// Loop thread only.
final class Worker {
    let loop: EventLoop
    /// Swapped by a reload (on this loop's thread); a request reads it when it starts, a connection's timers from
    /// the next one armed.
    var config: ServerConfig {
        didSet {
            hstsLine = config.hsts.map(ResponseRewriter.hstsLine)
            requestParser = RequestParser(limits: config.limits)
            phases = ConnectionPhases.runner(config: config, worker: self)
            if config.timeouts != oldValue.timeouts {
                let timeouts = config.timeouts.connection
                loop.forEachHandler { handler in
                    if let c = handler as? ClientConnection { c.life.timeouts = timeouts }
                }
            }
        }
    }
    /// The phases of client exchanges, built from `config` and the limiters below: rebuilt whenever either
    /// changes, so that it holds exactly the phases they switch on. An exchange keeps the runner it started with.
    private(set) var phases = PhaseRunner<ClientConnection>([])
    var tls: TLSContext?
    private(set) var requestParser: RequestParser
    let responseParser = ResponseParser()
    /// Scratch head: parsed into, used while a request is admitted and its upstream head written, then reused.
    var scratchHead = RequestHead()
    /// The response head being parsed, reused by every exchange on this worker: a head is parsed and written to
    /// its client in one go on the loop thread, and only its framing outcome stays with the exchange.
    var scratchResponse = ResponseHead()
    let upstreamHost: [UInt8]
    /// `config.hsts` as the whole header line, for the heads of TLS responses.
    private(set) var hstsLine: [UInt8]?
    /// The https port redirects point at: configured, else the bound TLS port (known only after binding).
    var redirectPort: UInt16 = 443
    let log: AccessLog
    /// Shared by all workers; nil when authentication is off.
    let authenticator: Authenticator?
    /// Logins with `ollama` keys, shared by all workers; nil without `authorized-keys`. Set by the server before
    /// the loop runs.
    var signedLogins: SignedLogins?
    /// This loop's Ed25519 verifier (its OpenSSL context is reused from one signed request to the next).
    private(set) lazy var ed25519 = Ed25519Verifier()
    /// Connections accepted by this worker so far: with the loop's index, each connection's `serial`.
    private var connectionsAccepted: UInt64 = 0
    /// The API keys' snapshot shared by every loop (nil without a key table: keys are then refused as malformed).
    let keys: KeyRing?
    /// Shared by all workers (one bucket per client across loops); nil when rate limiting is off.
    let rateLimiter: RateLimiter?
    /// Shared in-flight limits for inference routes; nil when off.
    let concurrency: ConcurrencyLimiter?
    /// Shared per-user request rate; nil when off.
    let userRateLimiter: UserRateLimiter?
    /// Token and request balances, shared by every worker (the `Quota` phase reserves, exchanges settle). Set once,
    /// before the loop runs; the phases are rebuilt with it.
    var quotaBook: QuotaBook? {
        didSet {
            pickDeciders()
            phases = ConnectionPhases.runner(config: config, worker: self)
        }
    }
    /// Where the `Quota` phase reserves and exchanges settle: `quotaBook`, or the fleet's balances with `shared`
    /// (falling back to `quotaBook`). Picked whenever either is set; nil without a book.
    private(set) var quotas: (any QuotaStore)?
    /// The Redis-shared limits of this worker (its own connection); nil when `redis` is unset. Set once, by the
    /// server before the loop runs.
    var shared: SharedLimits? {
        didSet {
            pickDeciders()
            phases = ConnectionPhases.runner(config: config, worker: self)
        }
    }
    /// How the phases decide the per-client rate: this process's limiter, or the fleet's with `shared`. Picked
    /// whenever `shared` is set; nil when rate limiting is off.
    private(set) var rateDecider: (any RateDecider)?
    /// Where inference slots come from: this process's limiter, or fleet-wide leases with `shared`; nil when
    /// concurrency limits are off.
    private(set) var slots: (any SlotProvider)?
    /// The failed-login throttle before and after a password check: this process's, or the fleet's with `shared`;
    /// nil when authentication is off.
    private(set) var loginThrottle: (any LoginThrottleStore)?
    /// The server's metrics (this worker updates its own cell); nil in bare tests.
    var metrics: Metrics?
    /// Process-wide gauges read at scrape time.
    var logSink: LogSink?
    /// The usage ledger's writer, shared by all workers; nil when the ledger is off. Set once, by the server
    /// before the loop runs.
    var ledger: UsageLedger?
    /// Reads the status page's history from the ledger, shared by all workers; nil when the ledger is off. Set once,
    /// by the server before the loop runs.
    var statusHistory: StatusHistoryReader?
    /// Idle keep-alive upstream connections per backend (index as in `ServerConfig.upstreams`).
    private(set) var idleUpstreams: [[UpstreamConnection]]
    /// Where requests go: one upstream, or the backend set shared by all workers when several backends (or a
    /// `max=`) are configured. Set by the server before the loop runs.
    var peers = UpstreamPeers.single
    /// Shared by all workers: `max-connections` and `max-connections-per-client`; nil when both are off.
    var connectionLimiter: ConnectionLimiter?
    /// Each backend's Host header bytes.
    let backendHosts: [[UInt8]]
    private(set) var draining = false
    var clientConnections = 0
    /// Request-body bytes held in memory while bodies are read whole on this worker, per user; bounded by
    /// `bodyBufferBudget`, half of it per user.
    var bodyBudget = BodyBudget()
    /// This worker's share of `max-body-buffered`: never less than two largest inference bodies, so that every user's
    /// half holds one.
    var bodyBufferBudget: Int {
        max(config.maxBodyBuffered / max(1, config.workers), 2 * config.bodyLimits.inference)
    }
    /// Called when the worker has drained (no connections left).
    var onDrained: (() -> Void)?
    private var rng: (UInt64, UInt64)

    init(loop: EventLoop, config: ServerConfig, tls: TLSContext?, authenticator: Authenticator?, rateLimiter: RateLimiter?,
         concurrency: ConcurrencyLimiter?, userRateLimiter: UserRateLimiter?, logSink: LogSink?, keys: KeyRing? = nil) {
        self.keys = keys
        self.idleUpstreams = Array(repeating: [], count: config.upstreams.count)
        self.backendHosts = config.upstreams.map { Array($0.address.hostHeader.utf8) }
        self.logSink = logSink
        self.authenticator = authenticator
        self.rateLimiter = rateLimiter
        self.concurrency = concurrency
        self.userRateLimiter = userRateLimiter
        self.loop = loop
        self.config = config
        self.tls = tls
        self.requestParser = RequestParser(limits: config.limits)
        self.upstreamHost = Array(config.upstream.hostHeader.utf8)
        hstsLine = config.hsts.map(ResponseRewriter.hstsLine)
        self.log = AccessLog(format: config.accessLog, loop: loop, sink: logSink)
        let seed = Syscall.randomBytes(16)
        var a: UInt64 = 0, b: UInt64 = 0
        for i in 0..<8 { a = a << 8 | UInt64(seed[i]); b = b << 8 | UInt64(seed[8 + i]) }
        rng = (a | 1, b | 2)
        pickDeciders()
        phases = ConnectionPhases.runner(config: config, worker: self)
    }

    /// Picks each decision-maker's implementation: the fleet's where `shared` has one (it falls back to this
    /// process's limiters by itself), else this process's.
    private func pickDeciders() {
        rateDecider = rateLimiter.map { (local: RateLimiter) -> any RateDecider in
            if let shared, let rate = shared.rate { return SharedRateDecider(local: local, limits: shared, rate: rate) }
            return LocalRateDecider(limiter: local)
        }
        slots = concurrency.map { (local: ConcurrencyLimiter) -> any SlotProvider in
            if let fleet = shared?.slots { return fleet }
            return LocalSlotProvider(limiter: local)
        }
        loginThrottle = authenticator.map { (auth: Authenticator) -> any LoginThrottleStore in
            if let shared, let login = shared.login {
                return SharedLoginThrottleStore(auth: auth, limits: shared, throttle: login)
            }
            return LocalLoginThrottleStore()
        }
        quotas = quotaBook.map { (book: QuotaBook) -> any QuotaStore in
            if let shared, let fleet = shared.quotas { return SharedQuotaStore(book: book, limits: shared, quotas: fleet) }
            return LocalQuotaStore(book: book)
        }
    }

    /// The Prometheus text of the shared limits (`tollgate_redis_*`); empty without them.
    var limitsMetrics: String { shared?.status.renderMetrics() ?? "" }

    /// A number no other connection of this process has had (the replay cache tells connections apart by it).
    func nextConnectionSerial() -> UInt64 {
        connectionsAccepted += 1
        return UInt64(loop.index) << 48 | connectionsAccepted
    }

    // MARK: request ids


    /// A fresh request id (xorshift128+ seeded from the kernel).
    func nextRequestID() -> RequestID {
        var s1 = rng.0
        let s0 = rng.1
        rng.0 = s0
        s1 ^= s1 << 23
        rng.1 = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26)
        return RequestID(rng.1 &+ s0)
    }

    // MARK: buffers

    private var freeInputs: [[UInt8]] = []
    private var freeOutputs: [[UInt8]] = []
    static let bufferSize = 16 * 1024

    /// A read buffer (count 16 KiB). Idle connections hold none, so 10,000 idle connections cost no buffers.
    func takeInput() -> [UInt8] {
        freeInputs.popLast() ?? [UInt8](repeating: 0, count: Worker.bufferSize)
    }

    /// Takes back a window's read buffer and leaves the window empty.
    func recycleInput(_ window: inout ReadWindow) {
        let buffer = window.release()
        if buffer.count == Worker.bufferSize && freeInputs.count < 128 { freeInputs.append(buffer) }
    }

    /// An empty write buffer with capacity reserved.
    func takeOutput() -> [UInt8] {
        if let b = freeOutputs.popLast() { return b }
        var b: [UInt8] = []
        b.reserveCapacity(Worker.bufferSize)
        return b
    }

    /// Drops pooled buffers beyond a small reserve (after a burst of connections has gone).
    func shrinkPools() {
        if freeInputs.count > 8 { freeInputs.removeLast(freeInputs.count - 8) }
        if freeOutputs.count > 8 { freeOutputs.removeLast(freeOutputs.count - 8) }
    }

    /// Takes back a write buffer and leaves `buffer` empty. Only a buffer with the room `takeOutput` promises is
    /// pooled: an empty one handed back (a buffer swapped away) would make every later taker grow it again.
    func recycleOutput(_ buffer: inout [UInt8]) {
        if buffer.capacity >= Worker.bufferSize && buffer.capacity <= 4 * Worker.bufferSize && freeOutputs.count < 128 {
            buffer.removeAll(keepingCapacity: true)
            freeOutputs.append(buffer)
        }
        buffer = []
    }

    // MARK: upstream pool

    /// An idle keep-alive connection to `backend`, most recently used first, or nil.
    func takeIdleUpstream(backend: Int = 0) -> UpstreamConnection? {
        while let up = idleUpstreams[backend].popLast() {
            if up.isUsable { return up }
            up.close()
        }
        return nil
    }

    /// Whether an idle keep-alive connection to `backend` is pooled.
    func hasIdleUpstream(backend: Int) -> Bool {
        !idleUpstreams[backend].isEmpty
    }

    /// Returns a connection to its backend's pool, or closes it when that pool is full or the worker drains.
    func putIdleUpstream(_ up: UpstreamConnection) {
        if draining || idleUpstreams[up.backend].count >= config.upstreamIdlePerWorker {
            up.close()
            return
        }
        up.becomeIdle()
        idleUpstreams[up.backend].append(up)
    }

    /// Forgets a pooled connection that closed.
    func removeIdleUpstream(_ up: UpstreamConnection) {
        if let i = idleUpstreams[up.backend].firstIndex(where: { $0 === up }) { idleUpstreams[up.backend].remove(at: i) }
    }

    // MARK: metrics

    /// Updates this worker's counters.
    func count(_ body: (inout MetricCounters) -> Void) {
        metrics?.update(loop.index, body)
    }

    /// Values owned by the shared limiters, the authenticator and the log writer, for a scrape.
    func scrapeValues() -> [MetricValue] {
        var g: [MetricValue] = []
        if let c = concurrency {
            g.append(.gauge("tollgate_inference_in_flight", "Inference requests holding a slot.",
                            Double(c.inFlight + (shared?.slots?.heldTotal.value ?? 0))))
            g.append(.gauge("tollgate_inference_queued", "Inference requests waiting for a slot.",
                            Double(shared?.slots?.queuedTotal.value ?? c.queued)))
        }
        if let r = rateLimiter {
            g.append(.gauge("tollgate_rate_limit_keys", "Client addresses tracked by the rate limiter.", Double(r.keyCount)))
        }
        if let a = authenticator {
            let s = a.stats
            g.append(.counter("tollgate_auth_hashes_computed_total", "Password hashes computed (cache misses).",
                              Double(s.hashesComputed)))
            g.append(.counter("tollgate_auth_cache_hits_total",
                              "Authentications answered from the verified-credential cache.", Double(s.cacheHits)))
            g.append(.gauge("tollgate_auth_queued", "Password checks waiting for a thread.", Double(s.queued)))
        }
        if let sink = logSink {
            g.append(.counter("tollgate_access_log_dropped_lines_total",
                              "Access-log lines dropped because the writer fell behind.", Double(sink.dropped)))
        }
        return g
    }

    // MARK: readiness

    /// `/readyz`'s answers for this worker (see `Readiness`).
    private(set) lazy var readiness = Readiness(worker: self)

    // MARK: draining

    /// Stops keep-alive: idle connections close now, busy ones after their current response.
    func beginDrain() {
        guard !draining else { return }
        draining = true
        for pool in idleUpstreams { for up in pool { up.close() } }
        for i in idleUpstreams.indices { idleUpstreams[i].removeAll() }
        loop.forEachHandler { handler in
            if let c = handler as? ClientConnection { c.drain() }
        }
        checkDrained()
    }

    /// Closes whatever is left (the grace period ran out).
    func forceClose() {
        loop.forEachHandler { handler in
            if let c = handler as? ClientConnection { c.close(.draining) }
        }
        checkDrained()
    }

    func connectionClosed() {
        clientConnections -= 1
        if draining { checkDrained() }
    }

    private func checkDrained() {
        if draining && clientConnections == 0, let done = onDrained {
            onDrained = nil
            done()
        }
    }

    func seconds(_ s: Double) -> UInt64 { UInt64(s * 1_000_000_000) }

    /// Model names this worker has used as metric labels (normalised); see `modelLabel`.
    private var modelLabels: Set<String> = []
    /// At most this many distinct model labels per worker; past it, `other`.
    static let maxModelLabels = 64

    /// The `model` label for a request's model: a bounded set, so a client cannot add a series per name it makes
    /// up. Tokens are only counted for requests Ollama answered with token counts (a model it has), names are
    /// normalised the way Ollama resolves them, and past `maxModelLabels` distinct names (or for a name outside the
    /// allow-list, when there is one) the label is `other`.
    func modelLabel(_ model: String) -> String {
        let name = ModelName.normalize(model)
        if modelLabels.contains(name) { return name }
        if !config.modelAllowlist.isEmpty && !config.modelAllowlist.contains(model) { return "other" }
        guard modelLabels.count < Worker.maxModelLabels, name.utf8.count <= 200 else { return "other" }
        modelLabels.insert(name)
        return name
    }
}
