import TollgateHTTP
import TollgateIO

/// Everything a running Tollgate needs: the value of every setting in `SettingDefinition.all` (each row names the
/// field it fills) and what start-up adds (the loaded users file, the development certificate's paths).
///
/// `ServerConfig()` is what `tollgate serve` runs with given no flags, no `TOLLGATE_*` variable and no config file:
/// the table's defaults, one event loop per core. The fields that settings fill are declared with zero values only
/// so that a config can be built field by field through the table's key paths; their defaults live in the table
/// alone, and every way of making a config (`init()`, `init(resolved:cores:)`) writes every one of them.
public struct ServerConfig: Sendable {
    /// The TLS listeners (IPv4 and/or IPv6); empty when only plain HTTP is served.
    public var listen: [SocketAddress] = []
    /// Plain-HTTP listeners (behind a load balancer, or local tests).
    public var listenPlain: [SocketAddress] = []
    /// Listeners that answer every plain request with a 301 to https.
    public var listenRedirect: [SocketAddress] = []
    /// The https port the redirect points at (the TLS listener's by default).
    public var redirectPort: UInt16?
    public var certificatePath: String?
    public var keyPath: String?
    /// The names the ACME client gets the certificate for (`acme-domain`); empty: ACME is off.
    public var acmeDomains: [String] = []
    /// The ACME account's contact address (`acme-email`).
    public var acmeEmail: String?
    /// The ACME directory URL (`acme-ca`, `staging` expanded).
    public var acmeCA = ""
    /// Extra roots trusted for the ACME CA's HTTPS (`acme-ca-root`).
    public var acmeCARoot: String?
    /// Where the ACME account, key and chain are kept (`state-dir`/acme); set by start-up when ACME is on.
    public var acmeDirectory: String?
    /// The first backend's address (the only one in a single-upstream setup); setting it replaces the first
    /// backend's address.
    public var upstream: UpstreamAddress {
        get { upstreams[0].address }
        set { upstreams[0].address = newValue }
    }
    /// Event loops (threads).
    public var workers = 0
    public var limits = HTTPLimits()
    public var timeouts = Timeouts()
    public var bodyLimits = BodyLimits()
    /// One access-log line per request: JSON (default, for journald and log shippers), text, or none.
    public var accessLog: AccessLogFormat = .none
    /// Where the access log goes: stdout when nil, else this file (reopened on SIGUSR1).
    public var accessLogPath: String?
    /// How long in-flight requests may finish after SIGTERM before connections are closed.
    public var drainGraceSeconds: Double = 0
    /// Bytes buffered towards a slow reader before Tollgate stops reading the other side.
    public var backpressureBytes: Int = 64 * 1024
    /// Client connections open at most (0: no cap; nil: half the open-file limit, see `Server.connectionLimiter`).
    public var maxConnections: Int?
    /// Client connections open at most from one address (an IPv6 /64); 0: no cap. Beyond it a new connection is
    /// closed at accept.
    public var maxConnectionsPerClient = 0
    /// Idle keep-alive connections kept to the upstream per worker.
    public var upstreamIdlePerWorker: Int = 64

    /// The per-IP limit's values (`rate`, `burst`, `rate-limit-keys`, ...), kept even while `rate` is 0; the
    /// server reads `rateLimit`.
    public var rateLimitSettings = RateLimitSettings()
    /// The per-IP request limit (nginx limit_req, exactly); nil when `rate` is 0. Setting nil sets the rate to 0.
    public var rateLimit: RateLimitSettings? {
        get { rateLimitSettings.ratePerSecond > 0 ? rateLimitSettings : nil }
        set {
            if let newValue { rateLimitSettings = newValue } else { rateLimitSettings.ratePerSecond = 0 }
        }
    }
    /// Peers whose X-Forwarded-For is believed (load balancers); the client is then the right-most untrusted entry.
    public var trustedProxies: [CIDR] = []
    /// Listeners expect a PROXY protocol v1/v2 header first (behind a load balancer that sends one); the client
    /// address it carries replaces the TCP peer's.
    public var proxyProtocol = false
    /// The only peers a PROXY protocol listener serves (its load balancers); any other is closed unread.
    public var proxyProtocolFrom: [CIDR] = []
    /// Models inference requests may name (from the body's "model"); empty allows any.
    public var modelAllowlist: Set<String> = []
    /// Who may use models Ollama would forward to ollama.com on the owner's account.
    public var cloudModels: CloudModels = .off
    /// The `policy` lines: per-user quotas, limits and request caps (`*` for everyone).
    public var policies = PolicyTable()
    /// Where `user:password` is still accepted next to API keys.
    public var passwordLogins: PasswordLogins = .everywhere
    /// Request-body bytes held in memory at once while bodies are read whole, over all workers (each worker gets
    /// an equal share, at least two largest inference bodies, and one user at most half of it); past it, 503.
    public var maxBodyBuffered = 0
    /// Users allowed on admin routes (pull, push, create, copy, delete, blobs); everyone else gets 403.
    public var admins: Set<String> = []
    /// Origins whose CORS preflights Tollgate answers (without authentication); "*" allows any.
    public var corsOrigins: [String] = []
    /// The in-flight limits' values (`max-inflight-per-user`, `max-inflight`, `queue`, ...), kept even while
    /// `max-inflight-per-user` is 0; the server reads `concurrency`.
    public var concurrencySettings = ConcurrencyLimiter.Settings()
    /// In-flight limits on inference routes (per user and overall) with a FIFO wait queue; nil when
    /// `max-inflight-per-user` is 0. Setting nil sets it to 0.
    public var concurrency: ConcurrencyLimiter.Settings? {
        get { concurrencySettings.perUser > 0 ? concurrencySettings : nil }
        set { if let newValue { concurrencySettings = newValue } else { concurrencySettings.perUser = 0 } }
    }
    /// Requests per second per user after authentication (`user-rate`); 0 turns the per-user rate off.
    public var userRatePerSecond: Double = 0
    /// The burst allowed above `userRatePerSecond` (`user-burst`).
    public var userBurst = 0
    /// An optional request rate per user (after authentication): (requests per second, burst); nil when off.
    public var userRate: (rate: Double, burst: Int)? {
        get { userRatePerSecond > 0 ? (userRatePerSecond, userBurst) : nil }
        set {
            userRatePerSecond = newValue?.rate ?? 0
            if let newValue { userBurst = newValue.burst }
        }
    }
    /// Liveness path answered by Tollgate without authentication or an upstream call; nil turns it off.
    public var healthPath: String?
    /// Readiness path: 200 when the upstream accepts connections (cached for a second), else 503; nil turns it off.
    public var readyPath: String?
    /// The Prometheus listener (plain HTTP, keep it on loopback); empty turns it off.
    public var metricsListen: [SocketAddress] = []
    /// When the metrics address is the default one, a taken port is a warning rather than a start-up error
    /// (a second instance on the same machine).
    public var metricsListenOptional = false
    /// The TLS session cache's size in bytes (`TLSSessionCache`, the process's); 0: no resumption.
    public var tlsSessionCacheBytes = TLSSessionCache.defaultBytes
    /// Strict-Transport-Security on every response over TLS (Mozilla: two years); nil leaves it out.
    public var hsts: String?
    /// Unauthenticated paths (e.g. "/api/version" for monitoring); empty by default.
    public var publicPaths: Set<String> = []
    /// Every Ollama backend, first one first (never empty; `upstream` is the first's address). Two or more:
    /// requests are routed by model and load, health-checked, and failed over (see `BackendSet`).
    public var upstreams: [BackendSpec] = []
    /// Seconds between active health checks and model polls of each backend.
    public var healthInterval: Double = 0
    /// Consecutive failures that eject a backend.
    public var healthFails = 0
    /// Requests that may wait for a backend with room (the `queue` setting), and for how long (`queue-timeout`).
    public var backendQueueLimit = 0
    public var backendQueueTimeoutMillis: UInt64 = 0
    /// The users allowed in; nil turns authentication off (tests of the bare proxy only: the CLI always sets it).
    public var users: UsersFile?
    /// The users file to watch for live reloads (nil: no watching).
    public var usersPath: String?
    /// The `authorized-keys` file of `ollama` CLI keys (nil: the signed form is refused); watched for live reloads.
    public var authorizedKeysPath: String?
    /// Its keys as loaded at start-up (nil: none configured, or authentication off).
    public var authorizedKeys: AuthorizedKeys?
    public var authSettings = Authenticator.Settings()
    /// Replaces the password check (tests: a check that does something while a hash is being computed).
    var passwordVerifier: (@Sendable (_ password: [UInt8], _ hash: String, _ format: HashFormat) -> Bool)?
    /// The realm in `WWW-Authenticate`.
    public var realm = ""
    /// The Redis shared by a fleet (`redis`); nil keeps every limit local to this process.
    public var redis: RedisConfiguration?
    /// Tollgates sharing that Redis (`fleet-size`).
    public var fleetSize = 0
    /// What the shared limits do while Redis is unreachable (`redis-fallback`).
    public var redisFallback: SharedLimitsSettings.Fallback = .local
    /// Milliseconds a Redis command may take (`redis-timeout`); `sharedLimits` puts it into its `redis`.
    public var redisTimeoutMillis: UInt64 = 0
    /// Inference slot lease in milliseconds (`slot-lease`).
    public var slotLeaseMillis: UInt64 = 0
    /// Limits shared by a fleet through Redis; nil when `redis` is. Setting it sets `redis` and the settings that
    /// go with it.
    public var sharedLimits: SharedLimitsSettings? {
        get {
            guard var redis else { return nil }
            redis.commandTimeoutMillis = redisTimeoutMillis
            var shared = SharedLimitsSettings(redis: redis)
            shared.fleetSize = fleetSize
            shared.fallback = redisFallback
            shared.slotLeaseMillis = slotLeaseMillis
            return shared
        }
        set {
            redis = newValue?.redis
            guard let newValue else { return }
            redisTimeoutMillis = newValue.redis.commandTimeoutMillis
            fleetSize = newValue.fleetSize
            redisFallback = newValue.fallback
            slotLeaseMillis = newValue.slotLeaseMillis
        }
    }
    /// Where `serve` writes its process id (for `tollgate reload`); nil: nowhere.
    public var pidFile: String?
    /// Where `serve` writes the outcome of its start and of each reload (`ReloadStatus`) for `tollgate reload`; nil:
    /// found as `ReloadStatus.directory` says.
    public var stateDirectory: String?
    /// Whether finished requests are recorded in the usage ledger (the `ledger` setting).
    public var ledgerEnabled = false
    /// How long usage rows are kept, in seconds; nil: forever.
    public var usageRetentionSeconds: Int64?
    /// The state database file (`tollgate.db` in the state directory), set by the command line's start-up; nil (as
    /// in tests that build a configuration themselves): no usage ledger and no database.
    public var databasePath: String?

    /// The configuration `tollgate serve` runs with when given nothing: every setting at its table default, one
    /// event loop (and one password-checking thread) per online core.
    public init() {
        do {
            try self.init(resolved: ConfigResolver.defaults)
        } catch {
            preconditionFailure("the settings table's defaults do not make a configuration: \(error)")
        }
    }

    /// Zero values everywhere: the start of building one from resolved settings.
    init(zero: Void) {}

    /// Whether the peers are a `BackendSet` (several backends, or one with an explicit `max=`); false makes them the
    /// single upstream, a set of one that keeps no books: no selection, buffering or health checks.
    public var usesBackendSet: Bool { upstreams.count >= 2 || upstreams.contains { $0.maxInFlight != nil } }

    /// The in-flight limit of backend `index`: its `max=`, else 1 with two or more backends, else unlimited (nil).
    public func backendLimit(_ index: Int) -> Int? {
        upstreams[index].maxInFlight ?? (upstreams.count >= 2 ? 1 : nil)
    }

    /// The number of online cores (at least 1): the default number of event loops and password-checking threads.
    public static func onlineCores() -> Int {
        Authenticator.Settings.onlineCores()
    }
}

/// Every timeout, in seconds. The ones that are settings start at zero: `ServerConfig` fills them from the table.
public struct Timeouts: Sendable, Equatable {
    /// From connection start, or from the first byte of a later request, until its head is complete (slow loris).
    public var requestHead: Double = 0
    /// A keep-alive connection waiting for its next request.
    public var keepAliveIdle: Double = 0
    /// Between reads of a request body (nginx client_body_timeout).
    public var clientBodyIdle: Double = 0
    /// From the head to the end of an inference request body, which is read whole before a slot is taken: a body
    /// trickled a byte per `clientBodyIdle` cannot hold its connection (or later a slot) for long.
    public var clientBodyTotal: Double = 0
    /// A client that accepts none of the bytes waiting for it (nginx send_timeout).
    public var clientSend: Double = 0
    /// Connecting to the upstream.
    public var upstreamConnect: Double = 0
    /// Between bytes from the upstream while a request is in flight (a model load takes minutes).
    public var upstreamIdle: Double = 0
    /// An idle pooled upstream connection before it is closed.
    public var upstreamPoolIdle: Double = 60

    public init() {}
}

/// Request body limits per route class; 0 means no limit. The ones that are settings start at zero: `ServerConfig`
/// fills them from the table.
public struct BodyLimits: Sendable, Equatable {
    /// generate, chat, embed and the /v1 equivalents: images in prompts need room.
    public var inference = 0
    /// Model uploads (`/api/blobs/…`) are many gigabytes.
    public var blobs: Int = 0
    /// Everything else.
    public var other = 0

    public init() {}
}

/// Access log output.
public enum AccessLogFormat: String, Sendable, CaseIterable {
    case json, text, none
}

/// The upstream's address and the Host header it expects.
public struct UpstreamAddress: Sendable, Equatable {
    public var address: SocketAddress
    /// "127.0.0.1:11434" or "ollama.internal:11434": what Tollgate sends as Host (Ollama refuses foreign hosts).
    public var hostHeader: String

    /// An upstream at `address`, sent `hostHeader` as Host.
    public init(address: SocketAddress, hostHeader: String) {
        self.address = address
        self.hostHeader = hostHeader
    }

    /// Parses "http://HOST:PORT" with a numeric HOST or localhost (port defaults to 80); nil for anything else.
    public init?(parsing text: String) {
        guard case .success(let a) = UpstreamAddress.parse(text, resolve: { _, _ throws(SocketError) in
            throw SocketError("not numeric")
        }) else { return nil }
        self = a
    }

    /// Parses "http://HOST:PORT" (port defaults to 80). A numeric HOST (IPv4, or IPv6 in brackets) or localhost is
    /// taken as is; any other host name is looked up with `resolve` (blocking: at start-up and reload, never on an
    /// event loop) and its first IPv4 or IPv6 address used, while the Host header keeps the name. The error is a
    /// message without location.
    static func parse(_ text: String, resolve: HostResolver) -> Result<UpstreamAddress, SettingValueError> {
        let shape = SettingValueError("\(text.debugDescription) is not http://HOST:PORT")
        var rest = Substring(text)
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) } else if rest.contains("://") { return .failure(shape) }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.isEmpty || rest.contains("/") { return .failure(shape) }
        var hostPort = String(rest)
        let hasPort: Bool
        if hostPort.hasPrefix("[") { hasPort = hostPort.contains("]:") } else { hasPort = hostPort.contains(":") }
        if !hasPort { hostPort += ":80" }
        if let address = SocketAddress(parsing: hostPort) {
            return .success(UpstreamAddress(address: address, hostHeader: address.description))
        }
        // A host name: letters, digits, hyphens and dots (RFC 1123), then a port.
        guard !hostPort.hasPrefix("["), let colon = hostPort.lastIndex(of: ":") else { return .failure(shape) }
        let host = String(hostPort[..<colon]), portText = hostPort[hostPort.index(after: colon)...]
        guard let port = UInt16(portText), !host.isEmpty, host.count <= 253,
              host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }),
              !host.hasPrefix("-"), !host.hasPrefix(".") else {
            return .failure(shape)
        }
        do {
            let address = try resolve(host, port)
            return .success(UpstreamAddress(address: address, hostHeader: "\(host):\(port)"))
        } catch {
            return .failure(SettingValueError("host \(host.debugDescription) does not resolve: \(error.description)"))
        }
    }
}

/// Looks a host name up for a port (`SocketAddress.resolve`: getaddrinfo, IPv4 or IPv6); blocking.
public typealias HostResolver = (_ host: String, _ port: UInt16) throws(SocketError) -> SocketAddress

/// Who may name a cloud model (one Ollama forwards to ollama.com, signed with the server's key and billed to its
/// owner): nobody by default.
public enum CloudModels: String, Sendable, CaseIterable {
    case off, admins, all
}
