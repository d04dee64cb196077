import ArgumentParser
import Glibc
import Tollgate
import TollgateIO

/// `tollgate serve`: parse flags into a ServerConfig, start, wait for SIGTERM/SIGINT, drain.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve HTTPS in front of Ollama.")

    @Option(name: .long, help: ArgumentHelp("TLS listen address HOST:PORT or [V6]:PORT; repeat for IPv4 and IPv6.", valueName: "addr"))
    var listen: [String] = []

    @Option(name: .customLong("listen-plain"), help: ArgumentHelp("Plain-HTTP listen address (behind a load balancer, or local tests).", valueName: "addr"))
    var listenPlain: [String] = []

    @Option(name: .customLong("listen-redirect"), help: ArgumentHelp("Listener answering every request with a 301 to https (e.g. 0.0.0.0:80).", valueName: "addr"))
    var listenRedirect: [String] = []

    @Option(help: ArgumentHelp("PEM certificate chain. Without it a development certificate under certs/ is used (and created).", valueName: "path"))
    var cert: String?

    @Option(help: ArgumentHelp("PEM private key for --cert.", valueName: "path"))
    var key: String?

    @Option(help: ArgumentHelp("Where Ollama listens.", valueName: "url"))
    var upstream: String = "http://127.0.0.1:11434"

    @Option(help: ArgumentHelp("htpasswd-style users file. Default: users.htpasswd in the current directory, created with a generated credential on first start.", valueName: "path"))
    var users: String?

    @Option(help: ArgumentHelp("Realm named in WWW-Authenticate.", valueName: "name"))
    var realm: String = "Tollgate"

    @Option(name: .customLong("auth-workers"), help: "Password-checking threads (default: one per core).")
    var authWorkers: Int?

    @Option(help: "Requests per second per client address (nginx limit_req rate); 0 turns the limit off.")
    var rate: Double = 10

    @Option(help: "Requests a client may make at once above the rate (nginx burst, with nodelay).")
    var burst: Int = 20

    @Option(name: .customLong("rate-limit-keys"), help: "Client addresses tracked at most (least recently used evicted).")
    var rateLimitKeys: Int = 100_000

    @Option(name: .customLong("rate-limit-exempt"), help: ArgumentHelp("CIDR never rate limited (monitoring); repeatable.", valueName: "cidr"))
    var rateLimitExempt: [String] = []

    @Flag(name: .customLong("rate-limit-dry-run"), help: "Log requests over the limit but let them through.")
    var rateLimitDryRun = false

    @Option(name: .customLong("trusted-proxy"), help: ArgumentHelp("CIDR of a load balancer whose X-Forwarded-For is believed; repeatable.", valueName: "cidr"))
    var trustedProxy: [String] = []

    @Option(help: ArgumentHelp("User allowed on admin routes (pull, push, create, copy, delete, blobs); repeatable.", valueName: "user"))
    var admin: [String] = []

    @Option(name: .customLong("cors-origin"), help: ArgumentHelp("Origin whose browser requests are allowed (preflights answered by Tollgate); repeatable; * for any.", valueName: "origin"))
    var corsOrigin: [String] = []

    @Option(name: .customLong("public-path"), help: ArgumentHelp("Path served without authentication (e.g. /api/version for monitoring); repeatable.", valueName: "path"))
    var publicPath: [String] = []

    @Option(name: .customLong("max-inflight-per-user"), help: "Inference requests one user may have in flight (0: no concurrency limits).")
    var maxInflightPerUser: Int = 2

    @Option(name: .customLong("max-inflight"), help: "Inference requests in flight overall (protects the GPU).")
    var maxInflight: Int = 4

    @Option(name: .customLong("queue"), help: "Inference requests that may wait for a slot; past it, 429 at once.")
    var queue: Int = 16

    @Option(name: .customLong("queue-timeout"), help: "Seconds a request may wait for a slot before 429.")
    var queueTimeout: Double = 30

    @Option(name: .customLong("user-rate"), help: "Requests per second per user after authentication (0: off).")
    var userRate: Double = 0

    @Option(name: .customLong("user-burst"), help: "Burst for --user-rate.")
    var userBurst: Int = 20

    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("Prometheus /metrics listener (plain HTTP; keep it on loopback); 'off' disables.", valueName: "addr"))
    var metricsListen: String?

    @Option(name: .customLong("health-path"), help: ArgumentHelp("Liveness path answered without auth or upstream ('off' disables).", valueName: "path"))
    var healthPath: String = "/healthz"

    @Option(name: .customLong("ready-path"), help: ArgumentHelp("Readiness path: 200 when Ollama accepts connections, else 503 ('off' disables).", valueName: "path"))
    var readyPath: String = "/readyz"

    @Option(help: ArgumentHelp("Strict-Transport-Security value on TLS responses ('off' leaves it out).", valueName: "value"))
    var hsts: String = "max-age=63072000"

    @Option(help: "Event loops (threads); default: one per core.")
    var workers: Int?

    @Option(help: ArgumentHelp("Access log format: json (one object per request), text, or none.", valueName: "format"))
    var log: String = "json"

    @Option(name: .customLong("access-log"), help: ArgumentHelp("Write the access log to this file (reopened on SIGUSR1) instead of stdout.", valueName: "path"))
    var accessLog: String?

    @Option(name: .customLong("head-timeout"), help: "Seconds to receive a request head.")
    var headTimeout: Double = 10

    @Option(name: .customLong("keepalive-timeout"), help: "Seconds an idle keep-alive connection stays open.")
    var keepAliveTimeout: Double = 75

    @Option(name: .customLong("body-timeout"), help: "Seconds between reads of a request body.")
    var bodyTimeout: Double = 60

    @Option(name: .customLong("send-timeout"), help: "Seconds a client may accept no bytes of its response.")
    var sendTimeout: Double = 60

    @Option(name: .customLong("upstream-connect-timeout"), help: "Seconds to connect to the upstream.")
    var upstreamConnectTimeout: Double = 5

    @Option(name: .customLong("upstream-timeout"), help: "Seconds the upstream may stay silent mid-request (model loads take minutes).")
    var upstreamTimeout: Double = 600

    @Option(name: .customLong("max-body-inference"), help: "Body limit in bytes for generate/chat/embed and /v1 inference (0: none).")
    var maxBodyInference: Int = 64 << 20

    @Option(name: .customLong("max-body"), help: "Body limit in bytes for other routes except blob uploads (0: none).")
    var maxBody: Int = 1 << 20

    @Option(name: .customLong("drain-timeout"), help: "Seconds in-flight requests may finish after SIGTERM.")
    var drainTimeout: Double = 30

    func run() throws {
        // Before any thread exists (the server, the password checkers, the watcher), so all inherit the mask and
        // SIGTERM reaches only the signal thread, which drains.
        Signals.block()
        var config = ServerConfig()
        func address(_ text: String, _ flag: String) throws -> SocketAddress {
            guard let a = SocketAddress(parsing: text) else {
                throw ValidationError("\(flag) \(text): expected HOST:PORT or [IPV6]:PORT with a numeric address")
            }
            return a
        }
        config.listen = try (listen.isEmpty && listenPlain.isEmpty ? ["0.0.0.0:8443"] : listen).map { try address($0, "--listen") }
        config.listenPlain = try listenPlain.map { try address($0, "--listen-plain") }
        config.listenRedirect = try listenRedirect.map { try address($0, "--listen-redirect") }
        switch metricsListen {
        case nil:
            config.metricsListen = [SocketAddress(parsing: "127.0.0.1:9091")!]
            config.metricsListenOptional = true
        case "off"?, ""?:
            config.metricsListen = []
        case let text?:
            config.metricsListen = [try address(text, "--metrics-listen")]
        }
        func path(_ p: String, _ flag: String) throws -> String? {
            if p == "off" || p.isEmpty { return nil }
            guard p.hasPrefix("/") else { throw ValidationError("\(flag) \(p) must start with / (or be off)") }
            return p
        }
        config.hsts = hsts == "off" || hsts.isEmpty ? nil : hsts
        config.healthPath = try path(healthPath, "--health-path")
        config.readyPath = try path(readyPath, "--ready-path")
        guard let up = UpstreamAddress(parsing: upstream) else {
            throw ValidationError("--upstream \(upstream): expected http://HOST:PORT with a numeric host or localhost")
        }
        config.upstream = up
        config.workers = workers ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard config.workers >= 1 && config.workers <= 256 else { throw ValidationError("--workers must be 1...256") }
        guard let format = AccessLogFormat(rawValue: log) else { throw ValidationError("--log must be json, text or none") }
        config.accessLog = format
        config.accessLogPath = accessLog
        config.timeouts.requestHead = headTimeout
        config.timeouts.keepAliveIdle = keepAliveTimeout
        config.timeouts.clientBodyIdle = bodyTimeout
        config.timeouts.clientSend = sendTimeout
        config.timeouts.upstreamConnect = upstreamConnectTimeout
        config.timeouts.upstreamIdle = upstreamTimeout
        config.bodyLimits.inference = maxBodyInference
        config.bodyLimits.other = maxBody
        config.drainGraceSeconds = drainTimeout

        if !config.listen.isEmpty {
            switch (cert, key) {
            case let (c?, k?):
                config.certificatePath = c
                config.keyPath = k
            case (nil, nil):
                let dev = try DevelopmentCertificate.ensure(in: "certs")
                config.certificatePath = dev.certificate
                config.keyPath = dev.key
                note(dev.created
                     ? "created a self-signed development certificate: \(dev.certificate) (key \(dev.key)); give --cert/--key for a real one"
                     : "using the development certificate \(dev.certificate); give --cert/--key for a real one")
            default:
                throw ValidationError("--cert and --key go together")
            }
        }

        try loadUsers(into: &config)
        func cidrs(_ list: [String], _ flag: String) throws -> [CIDR] {
            try list.map { text in
                guard let c = CIDR(parsing: text) else { throw ValidationError("\(flag) \(text): expected an address or CIDR like 10.0.0.0/8") }
                return c
            }
        }
        config.trustedProxies = try cidrs(trustedProxy, "--trusted-proxy")
        config.admins = Set(admin)
        for name in admin where config.users?.entries[name] == nil {
            note("warning: --admin \(name) is not a user in \(config.usersPath ?? "the users file")")
        }
        config.corsOrigins = corsOrigin
        for path in publicPath where !path.hasPrefix("/") { throw ValidationError("--public-path \(path) must start with /") }
        config.publicPaths = Set(publicPath)
        if maxInflightPerUser > 0 {
            guard maxInflight >= 1, queue >= 0, queueTimeout > 0 else {
                throw ValidationError("--max-inflight must be >= 1, --queue >= 0 and --queue-timeout > 0")
            }
            var c = ConcurrencyLimiter.Settings()
            c.perUser = maxInflightPerUser
            c.global = maxInflight
            c.queueLimit = queue
            c.queueTimeoutMillis = UInt64(queueTimeout * 1000)
            config.concurrency = c
        }
        if userRate > 0 { config.userRate = (userRate, max(0, userBurst)) }
        if rate > 0 {
            guard burst >= 0, rateLimitKeys > 0 else { throw ValidationError("--burst must be >= 0 and --rate-limit-keys > 0") }
            var limit = RateLimitSettings()
            limit.ratePerSecond = rate
            limit.burst = burst
            limit.maxKeys = rateLimitKeys
            limit.exempt = try cidrs(rateLimitExempt, "--rate-limit-exempt")
            limit.dryRun = rateLimitDryRun
            config.rateLimit = limit
        } else if rate < 0 {
            throw ValidationError("--rate must be >= 0")
        }

        let server: Server
        do {
            server = try Server(config: config)
        } catch {
            throw StartupError(error.description)
        }
        for a in server.tlsAddresses { note("serving https://\(a)") }
        for a in server.plainAddresses { note("serving http://\(a) (plain HTTP)") }
        for a in server.redirectAddresses { note("redirecting http://\(a) to https") }
        for a in server.metricsAddresses { note("metrics on http://\(a)/metrics") }
        note("proxying to Ollama at http://\(config.upstream.hostHeader) with \(config.workers) worker(s)")
        if !UpstreamProbe.reachable(config.upstream.address) {
            note("warning: nothing answers at http://\(config.upstream.hostHeader) yet; requests get 502 until Ollama runs there")
        }
        let grace = Int(config.drainGraceSeconds)
        Signals.install { sig in
            note("received \(sig == SIGINT ? "SIGINT" : "SIGTERM"): draining (up to \(grace) s); send again to stop now")
            server.shutdown()
        } onReload: {
            note("received SIGHUP: reloading the certificate and the users file")
            server.reloadCertificate()
            server.reloadUsers()
        } onReopenLogs: {
            server.logSink?.reopen()
        }
        server.start()
        server.waitUntilStopped()
        note("stopped")
    }
}

extension Serve {
    /// The default users file when none is configured.
    static let defaultUsersPath = "users.htpasswd"

    /// Loads the users file; on a first start with none configured and none at the default path, creates one with
    /// a generated credential and prints it once. A configured path that is missing is an error.
    func loadUsers(into config: inout ServerConfig) throws {
        let path = users ?? Serve.defaultUsersPath
        if users == nil && access(path, F_OK) != 0 {
            let password = UsersFileEditor.generatePassword()
            do {
                try UsersFileEditor.setPassword(path: path, user: "admin", password: password, cost: 10)
            } catch {
                throw StartupError("cannot create \(path): \(error.description)")
            }
            note("created \(path) with one user; this password is shown only once:")
            note("    user: admin    password: \(password)")
            note("    try: curl -k -u admin:\(password) https://localhost:\(config.listen.first?.port ?? 8443)/api/tags")
            note("manage users with: tollgate users add NAME / tollgate users remove NAME")
        } else if access(path, F_OK) != 0 {
            throw StartupError("users file \(path) does not exist (create it with: tollgate users add NAME --file \(path))")
        }
        let file: UsersFile
        do {
            file = try UsersFile.load(path: path)
        } catch {
            throw StartupError(error.description)
        }
        for w in file.warnings { note("warning: \(w)") }
        if file.entries.isEmpty { note("warning: \(path) has no users: every request will get 401") }
        config.users = file
        config.usersPath = path
        config.realm = realm
        if let authWorkers { config.authSettings.workers = max(1, authWorkers) }
    }
}

/// A start-up failure: printed as one clear line, exit status 1.
struct StartupError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = "tollgate: \(d)" }
}

/// Status lines go to stderr so stdout stays the access log.
func note(_ s: String) {
    let line = "tollgate: \(s)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}
