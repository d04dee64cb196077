import TollgateIO

extension ServerConfig {
    /// Builds a config from resolved settings (flag > environment > file > default), checking what the table cannot:
    /// addresses, the upstream URL, CIDRs and paths. Every problem names the setting and where its value came from.
    /// The certificate and the users file are only named here; loading them (and creating the development ones) is
    /// the caller's side effect.
    public init(resolved r: ResolvedConfig, cores: Int) throws(ConfigError) {
        self.init()
        var problems: [ConfigProblem] = []
        func problem(_ name: String, item: Int? = nil, _ message: String) {
            let location: ConfigProblem.Location
            switch item.map({ r.origin(name, item: $0) }) ?? r.origin(name) {
            case .flag: location = .flag(name)
            case .environment(let variable): location = .environment(variable)
            case .file(let path, let line): location = .file(path: path, line: line)
            case .default: location = .flag(name)
            }
            problems.append(ConfigProblem(location, key: name, message))
        }
        func addresses(_ name: String) -> [SocketAddress] {
            r.list(name).compactMap { text in
                guard let a = SocketAddress(parsing: text) else {
                    problem(name, "\(text.debugDescription) is not HOST:PORT or [IPV6]:PORT with a numeric address")
                    return nil
                }
                return a
            }
        }
        func cidrs(_ name: String) -> [CIDR] {
            r.list(name).compactMap { text in
                guard let c = CIDR(parsing: text) else {
                    problem(name, "\(text.debugDescription) is not an address or CIDR like 10.0.0.0/8")
                    return nil
                }
                return c
            }
        }
        func optionalPath(_ name: String) -> String? {
            guard let p = r.string(name), p != "off", !p.isEmpty else { return nil }
            if !p.hasPrefix("/") { problem(name, "\(p.debugDescription) must start with / (or be off)") }
            return p
        }

        listenPlain = addresses("listen-plain")
        // The default TLS listener applies only when no listener at all was configured.
        if r.origin("listen") == .default && !listenPlain.isEmpty { listen = [] } else { listen = addresses("listen") }
        listenRedirect = addresses("listen-redirect")
        certificatePath = r.string("cert")
        keyPath = r.string("key")
        if (certificatePath == nil) != (keyPath == nil) { problem(certificatePath == nil ? "key" : "cert", "cert and key go together") }
        var backends: [BackendSpec] = []
        for (i, text) in r.list("upstream").enumerated() {
            switch BackendSpec.parse(text) {
            case .success(let spec):
                if backends.contains(where: { $0.address == spec.address }) {
                    problem("upstream", item: i, "\(spec.address.hostHeader) is listed twice")
                } else {
                    backends.append(spec)
                }
            case .failure(let e):
                problem("upstream", item: i, e.message)
            }
        }
        if r.list("upstream").isEmpty { problem("upstream", "no upstream: give at least one http://HOST:PORT") }
        if backends.count > 64 { problem("upstream", "\(backends.count) backends; at most 64 are supported") }
        if !backends.isEmpty { upstreams = backends }
        healthInterval = r.double("health-interval") ?? healthInterval
        healthFails = r.int("health-fails") ?? healthFails
        backendQueueLimit = r.int("queue") ?? backendQueueLimit
        maxConnections = r.int("max-connections") ?? maxConnections
        maxConnectionsPerClient = r.int("max-connections-per-client") ?? maxConnectionsPerClient
        backendQueueTimeoutMillis = UInt64((r.double("queue-timeout") ?? 30) * 1000)
        workers = r.int("workers") ?? cores
        realm = r.string("realm") ?? "Tollgate"
        if let n = r.int("auth-workers") { authSettings.workers = n }
        authSettings.failureLimit = r.int("login-fail-limit") ?? authSettings.failureLimit
        authSettings.failureWindowSeconds = r.double("login-fail-window") ?? authSettings.failureWindowSeconds
        admins = Set(r.list("admin"))
        publicPaths = Set(r.list("public-path"))
        for p in publicPaths where !p.hasPrefix("/") { problem("public-path", "\(p.debugDescription) must start with /") }
        corsOrigins = r.list("cors-origin")
        trustedProxies = cidrs("trusted-proxy")
        proxyProtocol = r.bool("proxy-protocol")
        proxyProtocolFrom = cidrs("proxy-protocol-from")
        modelAllowlist = Set(r.list("model-allow"))
        cloudModels = CloudModels(rawValue: r.string("cloud-models") ?? "off") ?? .off

        let rate = r.double("rate") ?? 10
        if rate > 0 {
            var limit = RateLimitSettings()
            limit.ratePerSecond = rate
            limit.burst = r.int("burst") ?? 20
            limit.maxKeys = r.int("rate-limit-keys") ?? 100_000
            limit.exempt = cidrs("rate-limit-exempt")
            limit.dryRun = r.bool("rate-limit-dry-run")
            rateLimit = limit
        }
        let perUser = r.int("max-inflight-per-user") ?? 2
        if perUser > 0 {
            var c = ConcurrencyLimiter.Settings()
            c.perUser = perUser
            c.global = r.int("max-inflight") ?? 4
            c.queueLimit = r.int("queue") ?? 16
            c.queuePerUser = r.int("queue-per-user") ?? 4
            c.queueTimeoutMillis = UInt64((r.double("queue-timeout") ?? 30) * 1000)
            concurrency = c
        }
        if let userRate = r.double("user-rate"), userRate > 0 { self.userRate = (userRate, r.int("user-burst") ?? 20) }

        if let text = r.string("redis"), !text.isEmpty {
            if var redis = RedisConfiguration(url: text) {
                redis.commandTimeoutMillis = UInt64(((r.double("redis-timeout") ?? 0.25) * 1000).rounded())
                var shared = SharedLimitsSettings(redis: redis)
                shared.fleetSize = r.int("fleet-size") ?? 1
                shared.fallback = SharedLimitsSettings.Fallback(rawValue: r.string("redis-fallback") ?? "local") ?? .local
                shared.slotLeaseMillis = UInt64(((r.double("slot-lease") ?? 30) * 1000).rounded())
                sharedLimits = shared
            } else {
                problem("redis", "\(ResolvedConfig.redactedRedis(text).debugDescription) is not "
                        + "redis://[[user]:password@]host[:port][/db] (port 1...65535, db a number)")
            }
        }

        accessLog = AccessLogFormat(rawValue: r.string("log") ?? "json") ?? .json
        accessLogPath = r.string("access-log")
        switch r.string("metrics-listen") {
        case nil, "off"?, ""?:
            metricsListen = []
        case let text?:
            if let a = SocketAddress(parsing: text) { metricsListen = [a] } else {
                problem("metrics-listen", "\(text.debugDescription) is not HOST:PORT (or off)")
            }
            // The default address may be taken by a second instance on the machine: then warn, not fail.
            metricsListenOptional = r.origin("metrics-listen") == .default
        }
        healthPath = optionalPath("health-path")
        readyPath = optionalPath("ready-path")
        if let h = r.string("hsts") { hsts = h == "off" || h.isEmpty ? nil : h }

        timeouts.requestHead = r.double("head-timeout") ?? timeouts.requestHead
        timeouts.keepAliveIdle = r.double("keepalive-timeout") ?? timeouts.keepAliveIdle
        timeouts.clientBodyIdle = r.double("body-timeout") ?? timeouts.clientBodyIdle
        timeouts.clientBodyTotal = r.double("body-total-timeout") ?? timeouts.clientBodyTotal
        timeouts.clientSend = r.double("send-timeout") ?? timeouts.clientSend
        timeouts.upstreamConnect = r.double("upstream-connect-timeout") ?? timeouts.upstreamConnect
        timeouts.upstreamIdle = r.double("upstream-timeout") ?? timeouts.upstreamIdle
        drainGraceSeconds = r.double("drain-timeout") ?? drainGraceSeconds
        bodyLimits.inference = r.int("max-body-inference") ?? bodyLimits.inference
        bodyLimits.other = r.int("max-body") ?? bodyLimits.other
        maxBodyBuffered = r.int("max-body-buffered") ?? maxBodyBuffered

        if listen.isEmpty && listenPlain.isEmpty { problem("listen", "nothing to listen on: set listen or listen-plain") }
        if !problems.isEmpty { throw ConfigError(problems) }
    }
}
