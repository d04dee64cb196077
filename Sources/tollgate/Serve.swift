import ArgumentParser
import Glibc
import Synchronization
import Tollgate
import TollgateIO

/// `tollgate serve`: resolve settings (flag > TOLLGATE_* > config file > default), start, wait for signals.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve HTTPS in front of Ollama.")

    @OptionGroup var options: ServeOptions

    func run() throws {
        // Before any thread exists (the server, the password checkers, the watcher), so all inherit the mask and
        // SIGTERM reaches only the signal thread, which drains.
        Signals.block()
        let startup = try Startup(options: options, mode: .serve)
        var config = startup.config
        for w in startup.resolved.warnings { note("warning: \(w)") }
        if let path = startup.resolved.configPath { note("using config \(path)") }

        let server: Server
        do {
            server = try Server(config: config, keyStore: Serve.keyStore(config),
                                fleetRevocations: Serve.fleetRevocations(config))
        } catch {
            throw StartupError(error.description)
        }
        config = server.config
        // Balances from the usage ledger, before any request: a restart forgets no spending.
        if let ledger = server.ledger {
            do {
                try server.seedQuotas(from: LedgerSpendingHistory(path: ledger.settings.path))
            } catch {
                throw StartupError("cannot read the spending so far from the usage ledger: \(error) (quotas would start from zero)")
            }
        } else if !config.policies.isEmpty {
            note("warning: the usage ledger is off (ledger = off, or no state database): token and request quotas start from zero at each start")
        }
        // The outcome of the start and of each reload, for `tollgate reload` to wait for; written before the
        // "serving" lines, so that whoever waits for those finds it.
        let environment = Syscall.environment()
        let stateDirectory = ReloadStatus.directory(stateDir: config.stateDirectory, pidFile: config.pidFile,
                                                    environment: environment)
        let pid = getpid()
        let generation = Mutex<Int>(0)
        @Sendable func publish(_ status: ReloadStatus) {
            guard let stateDirectory else { return }
            do {
                try status.write(to: stateDirectory)
            } catch {
                note("warning: \(error.description): tollgate reload cannot see the outcome")
            }
        }
        if let stateDirectory {
            let started = ReloadStatus(pid: pid, generation: 0, ok: true, messages: ["started"])
            do {
                try started.write(to: stateDirectory)
            } catch {
                // A state directory the admin named must work; one found by default is a convenience.
                if config.stateDirectory != nil { throw StartupError("state-dir: \(error.description)") }
                note("warning: \(error.description): tollgate reload cannot see the outcome")
            }
        }
        for a in server.tlsAddresses { note("serving https://\(a)") }
        for a in server.plainAddresses { note("serving http://\(a) (plain HTTP)") }
        for a in server.redirectAddresses { note("redirecting http://\(a) to https") }
        for a in server.metricsAddresses { note("metrics on http://\(a)/metrics") }
        if config.upstreams.count == 1 {
            note("proxying to Ollama at http://\(config.upstream.hostHeader) with \(config.workers) worker(s)")
        } else {
            note("proxying to \(config.upstreams.count) Ollama backends with \(config.workers) worker(s)")
        }
        for (i, backend) in config.upstreams.enumerated() {
            if config.upstreams.count > 1 {
                let limit = config.backendLimit(i).map { "max \($0) in flight" } ?? "no in-flight limit"
                note("backend http://\(backend.address.hostHeader) (\(limit))")
            }
            if !UpstreamProbe.reachable(backend.address.address) {
                note("warning: nothing answers at http://\(backend.address.hostHeader) yet; "
                    + (config.upstreams.count == 1 ? "requests get 502 until Ollama runs there" : "its requests fail over to the others until it answers"))
            }
        }
        if let shared = config.sharedLimits {
            note("sharing limits through \(shared.redis.redactedURL) (fleet of \(shared.fleetSize), "
                 + "redis-fallback \(shared.fallback.rawValue))")
        }
        let pidFile = config.pidFile
        if let pidFile {
            let fd = open(pidFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0, Syscall.writeAll(fd, Array("\(getpid())\n".utf8)) == nil else {
                let code = errno
                if let stateDirectory { ReloadStatus.remove(from: stateDirectory, pid: pid) }
                throw StartupError("cannot write pid file \(pidFile): \(Syscall.describe(code))")
            }
            close(fd)
        }
        // The server runs before signals are taken: a SIGHUP that came early (they are blocked until now) then
        // reloads a running server, users-file watcher included, instead of racing its start.
        server.start()
        Signals.install { sig in
            // drain-timeout is reloadable: the one in force now (this is the signal thread, which reloads too).
            let grace = Int(server.config.drainGraceSeconds)
            note("received \(sig == SIGINT ? "SIGINT" : "SIGTERM"): draining (up to \(grace) s); send again to stop now")
            server.shutdown()
        } onReload: {
            note("received SIGHUP: reloading the configuration, the certificate, the users file and authorized-keys")
            let number = generation.withLock { n in
                n += 1
                return n
            }
            do {
                // Unchanged upstream names keep their running address: a DNS outage does not block the reload.
                let fresh = try Startup(options: options, mode: .reload,
                                        resolve: ServerConfig.reloadResolver(running: server.config))
                let lines = try server.reload(fresh.config)
                for line in lines { note(line) }
                server.reloadUsers()
                publish(ReloadStatus(pid: pid, generation: number, ok: true, messages: lines))
            } catch {
                // A reload that fails validation changes nothing (the users file stays watched as always).
                if error is StartupError { server.reloadFailed() }
                let message = (error as? StartupError)?.message ?? "\(error)"
                note("error: \(message); nothing changed")
                publish(ReloadStatus(pid: pid, generation: number, ok: false,
                                     messages: message.split(separator: "\n").map(String.init) + ["nothing changed"]))
            }
        } onReopenLogs: {
            server.logSink?.reopen()
        }
        server.waitUntilStopped()
        if let pidFile { unlink(pidFile) }
        if let stateDirectory { ReloadStatus.remove(from: stateDirectory, pid: pid) }
        note("stopped")
    }
}

extension Serve {
    /// The API keys' table in the state database, when there are users to log in as; a database that cannot be
    /// opened leaves keys off (passwords work as before), said once.
    static func keyStore(_ config: ServerConfig) -> (any KeyStore)? {
        guard config.users != nil, let path = config.databasePath else { return nil }
        do {
            return try SQLiteKeyStore(path: path)
        } catch {
            note("warning: \(error.description): API keys are off until the database can be opened (restart)")
            return nil
        }
    }

    /// With `redis`, the fleet's key revocations (read by the key watcher's thread, never a loop).
    static func fleetRevocations(_ config: ServerConfig) -> (any FleetRevocations)? {
        guard config.users != nil, config.databasePath != nil, let redis = config.sharedLimits?.redis,
              let address = try? redis.resolve() else { return nil }
        return SharedKeyRevocations(redis: BlockingRedis(configuration: redis, address: address,
                                                         timeoutMillis: Int(max(250, redis.commandTimeoutMillis))))
    }
}

/// Settings resolved into a ServerConfig, with the certificate and users file located (and, for `serve`, the
/// development ones created on first start, the certificate renewed when near expiry). `serve`, `check-config` and
/// a reload all come through here, so `check-config` validates exactly what `serve` would run; every problem found
/// (config file lines, flags, environment, values, certificate, users file) is thrown at once.
struct Startup {
    /// Who is starting up.
    enum Mode {
        /// `serve` starting: creates the development certificate and the first users file when needed.
        case serve
        /// `check-config`: changes nothing; says what `serve` would create, and loads the certificate to check it.
        case check
        /// A reload (SIGHUP) of a running server: changes nothing and repeats no warning.
        case reload
        /// A command that manages the server's state (`keys`): the settings and the users file, no certificate.
        case admin
    }

    let resolved: ResolvedConfig
    let config: ServerConfig
    /// What `check-config` found out about the certificate, for its report.
    private(set) var certificateReport: String?
    /// `serve`'s lock on the state directory, taken before anything is made there (the server takes its own too).
    private(set) var stateLock: StateLock?

    /// The default users file when none is configured.
    static let defaultUsersPath = "users.htpasswd"
    /// Where `serve` keeps the development certificate when no cert and key are configured.
    static let developmentDirectory = "certs"

    init(options: ServeOptions, mode: Mode, resolve: @escaping HostResolver = SocketAddress.resolve) throws {
        let loaded = ServerConfig.load(flags: options.givenFlags, environment: Syscall.environment(),
                                       configPath: options.config, resolve: resolve)
        resolved = loaded.resolved
        var config = loaded.config
        var problems = loaded.problems.map(\.description)
        let troubled = Set(loaded.problems.compactMap(\.key))
        if mode == .serve && problems.isEmpty {
            Diagnostics.configure(structured: config.accessLog == .json)
            // One running serve per state directory, checked before the ACME store (below) or the database (the
            // server) is touched there.
            stateLock = try Startup.lockStateDirectory(config, usersPath: resolved.string("users"))
        }
        if mode != .admin && !config.listen.isEmpty && troubled.isDisjoint(with: ["cert", "key", "listen", "listen-plain"]) {
            var acmeReport: String?
            if !config.acmeDomains.isEmpty, troubled.isDisjoint(with: ["acme-domain", "acme-ca", "state-dir", "users"]),
               mode != .serve || problems.isEmpty {
                acmeReport = try Startup.chooseACMECertificate(&config, usersPath: resolved.string("users"), mode: mode)
            }
            if config.certificatePath == nil && acmeReport == nil {
                let (cert, key) = DevelopmentCertificate.paths(in: Startup.developmentDirectory)
                switch mode {
                case .serve where problems.isEmpty:
                    let dev: (certificate: String, key: String, plan: DevelopmentCertificate.Plan)
                    do {
                        dev = try DevelopmentCertificate.ensure(in: Startup.developmentDirectory)
                    } catch {
                        throw StartupError(error.description)
                    }
                    switch dev.plan {
                    case .create:
                        note("created a self-signed development certificate: \(cert) (key \(key)); set cert and key for a real one")
                    case .renew(let reason):
                        note("renewed the development certificate \(cert) (\(reason)); set cert and key for a real one")
                    case .use:
                        note("using the development certificate \(cert); set cert and key for a real one")
                    }
                    config.certificatePath = cert
                    config.keyPath = key
                case .serve:
                    break
                case .check:
                    switch DevelopmentCertificate.plan(in: Startup.developmentDirectory) {
                    case .create:
                        certificateReport = "no cert and key configured: serve will create a self-signed development "
                            + "certificate \(cert) (key \(key))"
                    case .renew(let reason):
                        certificateReport = "no cert and key configured: serve will renew the development certificate "
                            + "\(cert) (\(reason))"
                    case .use:
                        config.certificatePath = cert
                        config.keyPath = key
                    }
                case .reload, .admin:
                    // A reload keeps using the development pair serve created at start-up.
                    config.certificatePath = cert
                    config.keyPath = key
                }
            }
            if mode == .check, let cert = config.certificatePath, let key = config.keyPath {
                do {
                    let tls = try TLSContext(certificatePath: cert, keyPath: key)
                    let days = (tls.notAfter - Int64(time(nil))) / 86_400
                    certificateReport = "certificate \(cert): ok, expires in \(days) day(s)"
                    if days < 14 { note("warning: certificate \(cert) expires in \(days) day(s)") }
                } catch {
                    problems.append(error.description)
                }
            }
            // Where the certificate comes from first, then what the file served now holds.
            if let acmeReport { certificateReport = acmeReport + (certificateReport.map { "; " + $0 } ?? "") }
        }
        if !troubled.contains("users") {
            do {
                try Startup.loadUsers(resolved.string("users"), into: &config,
                                      create: mode == .serve && problems.isEmpty, mode: mode)
            } catch {
                problems.append((error as? StartupError)?.message ?? "\(error)")
            }
        }
        if let path = config.authorizedKeysPath, !troubled.contains("authorized-keys") {
            do {
                let keys = try AuthorizedKeys.load(path: path)
                if mode != .reload { for w in WarnOnce.process.fresh(keys.warnings) { note("warning: \(w)") } }
                config.authorizedKeys = keys
            } catch {
                problems.append(error.description)
            }
        }
        guard problems.isEmpty else {
            throw StartupError("configuration:\n" + problems.joined(separator: "\n"))
        }
        // The state database: the usage ledger's and the keys' file (opened by the server, not here).
        config.databasePath = StateDatabase.path(in: StateDatabase.directory(configured: config.stateDirectory,
                                                                              usersPath: config.usersPath))
        for name in config.admins where config.users?.entries[name] == nil && config.usersPath != nil {
            note("warning: admin \(name) is not a user in \(config.usersPath ?? "the users file")")
        }
        self.config = config
    }

    /// The lock on the state directory `serve` will use (`state-dir`, or the folder beside the users file at
    /// `usersPath`). Another running serve there stops the start; a lock file that cannot be made stops it when the
    /// ledger is on (the database could not be written there either), else the server says so and runs without.
    static func lockStateDirectory(_ config: ServerConfig, usersPath: String?) throws -> StateLock? {
        let directory = StateDatabase.directory(configured: config.stateDirectory, usersPath: usersPath)
        do {
            return try StateLock.forServer(databasePath: StateDatabase.path(in: directory),
                                           required: config.ledgerEnabled) { Diagnostics.warn($0) }
        } catch {
            throw StartupError(error.description)
        }
    }

    /// The name of the user a first start generates: an ordinary user, as its name says (admin routes need the
    /// `admin` setting).
    static let generatedUser = "user"

    /// Loads the users file; on a first start with none configured and none at the default path, creates one with
    /// a generated credential and prints it once. A configured path that is missing is an error.
    static func loadUsers(_ configured: String?, into config: inout ServerConfig, create: Bool, mode: Mode) throws {
        let path = configured ?? defaultUsersPath
        let quiet = mode == .reload || mode == .admin
        if configured == nil && access(path, F_OK) != 0 && mode != .reload && !create {
            // What serve would do: check-config says so; a serve that stops on other problems creates nothing.
            if mode == .check { note("users file \(path): serve will create it with one user and a generated password") }
            return
        }
        if configured == nil && access(path, F_OK) != 0 && create {
            let password = UsersFileEditor.generatePassword()
            let user = generatedUser
            do {
                try UsersFileEditor.setPassword(path: path, user: user, password: password, presence: .mustNotExist)
            } catch {
                throw StartupError("cannot create \(path): \(error.description)")
            }
            note("created \(path) with one user; this password is shown only once:")
            note("    user: \(user)    password: \(password)")
            note("    try: curl -k -u \(user):\(password) https://localhost:\(config.listen.first?.port ?? 8443)/api/tags")
            note("    \(user.debugDescription) is an ordinary user: to let it pull, push, create, copy or delete models, "
                 + "set admin = \(user) (or --admin \(user))")
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
        if !quiet { for w in WarnOnce.process.fresh(file.warnings) { note("warning: \(w)") } }
        if !quiet, !file.disabled.isEmpty { note("\(path): \(file.summary)") }
        if file.entries.isEmpty { note("warning: \(path) has no users: every request will get 401") }
        config.users = file
        config.usersPath = path
    }
}

/// A start-up failure: printed as one clear message, exit status 1.
struct StartupError: Error, CustomStringConvertible {
    var description: String
    /// The message without the program's name, to collect with others.
    var message: String
    init(_ d: String) {
        message = d
        description = "tollgate: \(d)"
    }
}

/// Status lines go to stderr so stdout stays the access log (JSON lines under journald, text on a terminal).
func note(_ s: String) {
    if s.hasPrefix("warning: ") {
        Diagnostics.warn(String(s.dropFirst(9)))
    } else if s.hasPrefix("error: ") {
        Diagnostics.error(String(s.dropFirst(7)))
    } else {
        Diagnostics.info(s)
    }
}
