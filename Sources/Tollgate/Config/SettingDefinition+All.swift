import TollgateIO

extension SettingDefinition {
    /// Every `tollgate serve` setting, in the order `--help`, check-config and the example file list them.
    ///
    /// A row is: name (the file key; the flag is `--name`, the variable `TOLLGATE_NAME`), kind (type and range),
    /// default (the only place it is written), whether a reload applies it, the `ServerConfig` field it fills
    /// (`.field(\.x)`, with a reading such as `{ $0.addresses() }` when the text needs checking or converting), and
    /// the help shown by `--help`. From the row follow: the resolver, the config file's keys, `TOLLGATE_*`
    /// variables, check-config's output, `ServerConfig()` (the defaults `serve` runs with) and what a reload
    /// applies or names as needing a restart.
    ///
    /// Adding a setting takes:
    /// 1. a row here;
    /// 2. its field in `ServerConfig` (a zero placeholder: the row's default replaces it), unless the row fills a
    ///    field of a struct already there (`\.timeouts.x`);
    /// 3. its flag in `ServeOptions`, one line: `@Option(setting: "name") var name: String?` (`[String] = []` for a
    ///    list, `@Flag(setting:) … = false` for a bool); `CLISettingFlagsTests` fails naming any setting whose flag,
    ///    help or kind differs from its row, and any flag that does not reach the resolver;
    /// 4. the code that uses it, and its line in README's settings table.
    /// A string or list setting also needs a sample value in `SettingSamples` (tests fail naming it).
    ///
    /// Ranges reject values no deployment wants (a zero head timeout, 10,000 workers) at load time;
    /// addresses, URLs and CIDRs are checked when the `ServerConfig` is built.
    public static let all: [SettingDefinition] = [
        // Listeners and TLS
        .init("listen", .list, default: "0.0.0.0:8443", .restart,
              .field(\.listen) { $0.addresses() },
              "TLS listen address HOST:PORT or [V6]:PORT; repeat for IPv4 and IPv6 "
              + "(the default applies only when listen-plain is empty too)."),
        .init("listen-plain", .list, default: nil, .restart,
              .field(\.listenPlain) { $0.addresses() },
              "Plain-HTTP listen address (behind a load balancer, or local tests)."),
        .init("listen-redirect", .list, default: nil, .restart,
              .field(\.listenRedirect) { $0.addresses() },
              "Listener answering every request with a 301 to https (e.g. 0.0.0.0:80)."),
        .init("cert", .string, default: nil, .reloadable,
              .field(\.certificatePath),
              "PEM certificate chain. Without it a development certificate under certs/ is used (and created)."),
        .init("key", .string, default: nil, .reloadable,
              .field(\.keyPath),
              "PEM private key for cert."),
        .init("acme-domain", .list, default: nil, .restart,
              .field(\.acmeDomains) { $0.domainNames() },
              "Domain name to get the certificate for from an ACME CA (Let's Encrypt), renewed automatically; repeat "
              + "for more names. Needs port 443 (listen) or listen-redirect on port 80 reachable from the internet."),
        .init("acme-email", .string, default: nil, .restart,
              .field(\.acmeEmail) { $0.emailAddress() },
              "Contact address given to the ACME CA (its expiry and policy notices)."),
        .init("acme-ca", .string, default: "https://acme-v02.api.letsencrypt.org/directory", .restart,
              .field(\.acmeCA) { $0.acmeDirectoryURL() },
              "ACME directory URL (https); staging for Let's Encrypt's staging directory (try it first: "
              + "production has rate limits)."),
        .init("acme-ca-root", .string, default: nil, .restart,
              .field(\.acmeCARoot),
              "PEM file of CA certificates trusted for the ACME CA's own HTTPS, besides the system's (a private CA)."),
        // Upstream
        .init("upstream", .list, default: "http://127.0.0.1:11434", .restart,
              .field(\.upstreams) { $0.backends() },
              "Where Ollama listens: URL[ max=N]; repeat for several backends (max: inference requests in flight "
              + "on that backend; default 1 with two or more backends, unlimited with one)."),
        .init("health-interval", .double(0.05...3_600), default: "2", .restart,
              .field(\.healthInterval),
              "Seconds between health checks (GET /api/version) and model polls (/api/tags, /api/ps) of each "
              + "backend (with several upstreams, or one with max=)."),
        .init("health-fails", .int(1...1_000), default: "3", .restart,
              .field(\.healthFails),
              "Consecutive failed checks or proxied connection failures that eject a backend; one success brings it back."),
        // Authentication
        .init("users", .string, default: nil, .restart,
              .field(\.usersPath),
              "htpasswd-style users file. Default: users.htpasswd in the current directory, "
              + "created with a generated credential on first start."),
        .init("authorized-keys", .string, default: nil, .restart,
              .field(\.authorizedKeysPath),
              "File of ollama CLI keys allowed in (OLLAMA_AUTH): ssh-ed25519 KEY USER lines; its contents reload on "
              + "their own."),
        .init("realm", .string, default: "Tollgate", .reloadable,
              .field(\.realm),
              "Realm named in WWW-Authenticate."),
        .init("auth-workers", .int(1...256), default: nil, .restart,
              .field(\.authSettings.workers) { $0.intOrCores() },
              "Password-checking threads (default: one per core)."),
        .init("login-fail-limit", .int(0...1_000_000), default: "10", .restart,
              .field(\.authSettings.failureLimit),
              "Failed logins per user from one client address (IPv6: per /64) that refuse that user from there, "
              + "for login-fail-window; three times as many over all users refuse the address (0: no throttle)."),
        .init("login-fail-window", .double(1...86_400), default: "60", .restart,
              .field(\.authSettings.failureWindowSeconds),
              "Seconds failed logins are counted in; a throttle ends when its oldest failure is that old."),
        .init("admin", .list, default: nil, .reloadable,
              .field(\.admins),
              "User allowed on admin routes (pull, push, create, copy, delete, blobs); repeatable."),
        .init("public-path", .list, default: nil, .reloadable,
              .field(\.publicPaths) { $0.paths() },
              "Path served without authentication (e.g. /api/version for monitoring); repeatable."),
        .init("cors-origin", .list, default: nil, .reloadable,
              .field(\.corsOrigins),
              "Origin whose browser requests are allowed (preflights answered by Tollgate); repeatable; * for any."),
        // Rate limits (per client address, before authentication)
        .init("rate", .double(0...1_000_000), default: "10", .restart,
              .field(\.rateLimitSettings.ratePerSecond),
              "Requests per second per client address (nginx limit_req rate); 0 turns the limit off."),
        .init("burst", .int(0...1_000_000), default: "20", .restart,
              .field(\.rateLimitSettings.burst),
              "Requests a client may make at once above the rate (nginx burst, with nodelay)."),
        .init("rate-limit-keys", .int(1...100_000_000), default: "100000", .restart,
              .field(\.rateLimitSettings.maxKeys),
              "Client addresses tracked at most (least recently used evicted)."),
        .init("rate-limit-exempt", .list, default: nil, .restart,
              .field(\.rateLimitSettings.exempt) { $0.cidrs() },
              "CIDR never rate limited (monitoring); repeatable."),
        .init("rate-limit-dry-run", .bool, default: "false", .restart,
              .field(\.rateLimitSettings.dryRun),
              "Log requests over the limit but let them through."),
        .init("proxy-protocol", .bool, default: "false", .restart,
              .field(\.proxyProtocol),
              "Listeners expect a PROXY protocol v1/v2 header (cloud load balancers); its client address is used."),
        // Loopback and the private ranges (RFC 1918, IPv6 unique local), where cloud load balancers reach their
        // targets from. A peer on a public address never is believed unless configured: like nginx's
        // `set_real_ip_from`, and unlike HAProxy's bare `accept-proxy`, which believes any peer of the listener.
        .init("proxy-protocol-from", .list,
              default: "127.0.0.0/8, ::1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7", .reloadable,
              .field(\.proxyProtocolFrom) { $0.cidrs() },
              "CIDR of a load balancer allowed to send a PROXY protocol header; connections from anywhere else are "
              + "closed unread; repeatable (default: loopback and private ranges)."),
        .init("max-connections", .int(0...10_000_000), default: nil, .restart,
              .field(\.maxConnections),
              "Client connections open at most, idle ones included; past it new ones are closed at accept "
              + "(default: half the open-file limit, as HAProxy does; 0: no cap)."),
        .init("max-connections-per-client", .int(0...10_000_000), default: "256", .restart,
              .field(\.maxConnectionsPerClient),
              "Client connections open at most from one address (an IPv6 /64), idle ones included; past it new "
              + "ones are closed at accept (0: no cap). Load balancers' connections count per client they name."),
        .init("model-allow", .list, default: nil, .reloadable,
              .field(\.modelAllowlist),
              "Models inference requests may name (checked in the body before anything reaches Ollama); repeatable."),
        .init("password-logins", .choice(["everywhere", "basic", "nowhere"]), default: "everywhere", .reloadable,
              .field(\.passwordLogins) { $0.choice() },
              "Where user:password is still accepted next to API keys: everywhere (Basic, Bearer, x-api-key), "
              + "basic (Basic only), or nowhere (API keys only)."),
        .init("cloud-models", .choice(["off", "admins", "all"]), default: "off", .reloadable,
              .field(\.cloudModels) { $0.choice() },
              "Who may use models Ollama forwards to ollama.com (names ending :cloud or -cloud), billed to the "
              + "server owner's account: off (403 for everyone), admins, or all."),
        .init("trusted-proxy", .list, default: nil, .reloadable,
              .field(\.trustedProxies) { $0.cidrs() },
              "CIDR of a load balancer whose X-Forwarded-For is believed; repeatable."),
        // Per-user limits (after authentication)
        .init("max-inflight-per-user", .int(0...100_000), default: "2", .restart,
              .field(\.concurrencySettings.perUser),
              "Inference requests one user may have in flight (0: no concurrency limits)."),
        .init("max-inflight", .int(1...100_000), default: "4", .restart,
              .field(\.concurrencySettings.global),
              "Inference requests in flight overall (protects the GPU)."),
        .init("queue", .int(0...1_000_000), default: "16", .restart,
              .field(\.concurrencySettings.queueLimit, \.backendQueueLimit),
              "Inference requests that may wait for a slot; past it, 429 at once."),
        .init("queue-per-user", .int(0...1_000_000), default: "4", .restart,
              .field(\.concurrencySettings.queuePerUser),
              "Places in that queue one user may hold (so one user cannot fill it); past it, 429 at once."),
        .init("queue-timeout", .double(0.001...86_400), default: "30", .restart,
              .field(\.concurrencySettings.queueTimeoutMillis, \.backendQueueTimeoutMillis) { $0.millis() },
              "Seconds a request may wait for a slot before 429."),
        .init("user-rate", .double(0...1_000_000), default: "0", .restart,
              .field(\.userRatePerSecond),
              "Requests per second per user after authentication (0: off)."),
        .init("user-burst", .int(0...1_000_000), default: "20", .restart,
              .field(\.userBurst),
              "Burst for user-rate."),
        .init("policy", .lines, default: nil, .reloadable,
              .field(\.policies) { $0.policies() },
              "Per-user policy: USER (or * for everyone) then key=value pairs: tokens-per-day, tokens-per-month, "
              + "requests-per-day, models, max-inflight, rate, cloud-models, max-context, max-predict, keep-alive, "
              + "model-overrides; "
              + "repeatable, one line per user."),
        // Shared limits (several Tollgates behind one load balancer)
        .init("redis", .string, default: nil, .restart,
              .field(\.redis) { $0.redis() },
              "redis://[[user]:password@]host[:port][/db] shared by the fleet for rate limits, failed logins and "
              + "inference slots; unset: limits are local to this process."),
        .init("fleet-size", .int(1...1000), default: "1", .restart,
              .field(\.fleetSize),
              "Tollgates sharing that Redis: while it is unreachable each limits locally at rate/N and caps/N."),
        .init("redis-fallback", .choice(["local", "open", "closed"]), default: "local", .restart,
              .field(\.redisFallback) { $0.choice() },
              "While Redis is unreachable: local (limits / fleet-size), open (no limits), or closed (503)."),
        .init("redis-timeout", .double(0.001...60), default: "0.25", .restart,
              .field(\.redisTimeoutMillis) { $0.millis() },
              "Seconds a Redis command may take before Redis counts as unavailable."),
        .init("slot-lease", .double(1...86_400), default: "30", .restart,
              .field(\.slotLeaseMillis) { $0.millis() },
              "Seconds an inference slot lease lasts without a heartbeat (sent every lease/3)."),
        // Process and logging
        .init("workers", .int(1...256), default: nil, .restart,
              .field(\.workers) { $0.intOrCores() },
              "Event loops (threads); default: one per core."),
        .init("log", .choice(["json", "text", "none"]), default: "json", .restart,
              .field(\.accessLog) { $0.choice() },
              "Access log format: json (one object per request), text, or none."),
        .init("access-log", .string, default: nil, .restart,
              .field(\.accessLogPath),
              "Write the access log to this file (reopened on SIGUSR1) instead of stdout."),
        .init("metrics-listen", .string, default: "127.0.0.1:9091", .restart,
              .field(\.metricsListen) { $0.addressOrOff() },
              "Prometheus /metrics listener (plain HTTP; keep it on loopback); off disables."),
        .init("health-path", .string, default: "/healthz", .reloadable,
              .field(\.healthPath) { $0.pathOrOff() },
              "Liveness path answered without auth or upstream; off disables."),
        .init("ready-path", .string, default: "/readyz", .reloadable,
              .field(\.readyPath) { $0.pathOrOff() },
              "Readiness path: 200 when Ollama accepts connections, else 503; off disables."),
        .init("tls-session-cache", .int(0...(1 << 30)), default: String(TLSSessionCache.defaultBytes), .restart,
              .field(\.tlsSessionCacheBytes),
              "Bytes of TLS sessions kept for resumption, shared by every worker (about 270 bytes a session; the "
              + "least recently used go first); 0: every connection makes a full handshake."),
        .init("hsts", .string, default: "max-age=63072000", .reloadable,
              .field(\.hsts) { $0.textOrOff() },
              "Strict-Transport-Security value on TLS responses; off leaves it out."),
        .init("pid-file", .string, default: nil, .restart,
              .field(\.pidFile),
              "Write the process id here (for tollgate reload); e.g. /run/tollgate/tollgate.pid."),
        .init("state-dir", .string, default: nil, .restart,
              .field(\.stateDirectory),
              "Directory for the server's state: the usage database (tollgate.db; default: a folder state beside "
              + "the users file) and the outcome of each reload (read by tollgate reload; default: systemd's "
              + "RuntimeDirectory, else the pid file's directory, else /run/tollgate if it exists)."),
        .init("ledger", .choice(["on", "off"]), default: "on", .restart,
              .field(\.ledgerEnabled) { $0.required($0.resolved.string($0.name)) == "on" },
              "Record one row per finished request in the usage database (tollgate usage); off: no rows."),
        .init("usage-retention", .string, default: "400d", .restart,
              .field(\.usageRetentionSeconds) { $0.retention() },
              "How long usage rows are kept (e.g. 90d, 12w, 36h); 0 or forever keeps them all."),
        // Timeouts, in seconds
        .init("head-timeout", .double(0.001...86_400), default: "10", .reloadable,
              .field(\.timeouts.requestHead),
              "Seconds to receive a request head."),
        .init("keepalive-timeout", .double(0.001...86_400), default: "75", .reloadable,
              .field(\.timeouts.keepAliveIdle),
              "Seconds an idle keep-alive connection stays open."),
        .init("body-timeout", .double(0.001...86_400), default: "60", .reloadable,
              .field(\.timeouts.clientBodyIdle),
              "Seconds between reads of a request body."),
        .init("body-total-timeout", .double(0.001...86_400), default: "120", .reloadable,
              .field(\.timeouts.clientBodyTotal),
              "Seconds to receive a whole inference request body (read in full before an inference slot is taken)."),
        .init("send-timeout", .double(0.001...86_400), default: "60", .reloadable,
              .field(\.timeouts.clientSend),
              "Seconds a client may accept no bytes of its response."),
        .init("upstream-connect-timeout", .double(0.001...86_400), default: "5", .reloadable,
              .field(\.timeouts.upstreamConnect),
              "Seconds to connect to the upstream."),
        .init("upstream-timeout", .double(0.001...86_400), default: "600", .reloadable,
              .field(\.timeouts.upstreamIdle),
              "Seconds the upstream may stay silent mid-request (model loads take minutes)."),
        .init("drain-timeout", .double(0...86_400), default: "30", .reloadable,
              .field(\.drainGraceSeconds),
              "Seconds in-flight requests may finish after SIGTERM."),
        // Body limits, in bytes
        .init("max-body-inference", .int(0...(1 << 40)), default: "67108864", .reloadable,
              .field(\.bodyLimits.inference),
              "Body limit in bytes for generate/chat/embed and /v1 inference (0: none); default 64 MiB."),
        .init("max-body-buffered", .int(0...(1 << 40)), default: "268435456", .reloadable,
              .field(\.maxBodyBuffered),
              "Request-body bytes held in memory at once while bodies are read whole (inference routes, and every "
              + "route with several backends), shared equally by the workers (at least two largest bodies each), one "
              + "user at most half of a worker's share; past it, 503."),
        .init("max-body", .int(0...(1 << 40)), default: "1048576", .reloadable,
              .field(\.bodyLimits.other),
              "Body limit in bytes for other routes except blob uploads (0: none); default 1 MiB."),
    ]
}
