import ArgumentParser
import Glibc
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
        let startup = try Startup(options: options, sideEffects: true)
        var config = startup.config
        for w in startup.resolved.warnings { note("warning: \(w)") }
        if let path = startup.resolved.configPath { note("using config \(path)") }

        let server: Server
        do {
            server = try Server(config: config)
        } catch {
            throw StartupError(error.description)
        }
        config = server.config
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
                throw StartupError("cannot write pid file \(pidFile): \(Syscall.describe(errno))")
            }
            close(fd)
        }
        Signals.install { sig in
            // drain-timeout is reloadable: the one in force now (this is the signal thread, which reloads too).
            let grace = Int(server.config.drainGraceSeconds)
            note("received \(sig == SIGINT ? "SIGINT" : "SIGTERM"): draining (up to \(grace) s); send again to stop now")
            server.shutdown()
        } onReload: {
            note("received SIGHUP: reloading the configuration, the certificate and the users file")
            do {
                let fresh = try Startup(options: options, sideEffects: false, quiet: true)
                for line in server.reload(fresh.config) { note(line) }
                server.reloadUsers()
            } catch {
                // A reload that fails validation changes nothing (the users file stays watched as always).
                server.reloadFailed()
                note("error: \(error); nothing changed")
            }
        } onReopenLogs: {
            server.logSink?.reopen()
        }
        server.start()
        server.waitUntilStopped()
        if let pidFile { unlink(pidFile) }
        note("stopped")
    }
}

/// Settings resolved into a ServerConfig, with the certificate and users file located (and, for `serve`, the
/// development ones created on first start).
struct Startup {
    let resolved: ResolvedConfig
    let config: ServerConfig

    /// The default users file when none is configured.
    static let defaultUsersPath = "users.htpasswd"

    init(options: ServeOptions, sideEffects: Bool, quiet: Bool = false) throws {
        do {
            resolved = try ConfigResolver.load(flags: options.givenFlags, environment: Syscall.environment(),
                                               configPath: options.config)
        } catch {
            throw StartupError("configuration:\n" + error.description)
        }
        var config: ServerConfig
        do {
            config = try ServerConfig(resolved: resolved)
        } catch {
            throw StartupError("configuration:\n" + error.description)
        }
        if sideEffects { Diagnostics.configure(structured: config.accessLog == .json) }
        if !config.listen.isEmpty && config.certificatePath == nil && !quiet {
            if sideEffects {
                let dev = try DevelopmentCertificate.ensure(in: "certs")
                config.certificatePath = dev.certificate
                config.keyPath = dev.key
                note(dev.created
                     ? "created a self-signed development certificate: \(dev.certificate) (key \(dev.key)); set cert and key for a real one"
                     : "using the development certificate \(dev.certificate); set cert and key for a real one")
            } else {
                throw StartupError("no cert and key configured (serve would create a development certificate under certs/)")
            }
        }
        if quiet, config.certificatePath == nil, !config.listen.isEmpty {
            // A reload keeps using the development pair serve created at start-up.
            config.certificatePath = "certs/dev-cert.pem"
            config.keyPath = "certs/dev-key.pem"
        }
        try Startup.loadUsers(resolved.string("users"), into: &config, create: sideEffects, quiet: quiet)
        for name in config.admins where config.users?.entries[name] == nil {
            note("warning: admin \(name) is not a user in \(config.usersPath ?? "the users file")")
        }
        self.config = config
    }

    /// The name of the user a first start generates: an ordinary user, as its name says (admin routes need the
    /// `admin` setting).
    static let generatedUser = "user"

    /// Loads the users file; on a first start with none configured and none at the default path, creates one with
    /// a generated credential and prints it once. A configured path that is missing is an error.
    static func loadUsers(_ configured: String?, into config: inout ServerConfig, create: Bool, quiet: Bool = false) throws {
        let path = configured ?? defaultUsersPath
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
    init(_ d: String) { description = "tollgate: \(d)" }
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
