import ArgumentParser
import Glibc
import Tollgate
import TollgateIO

/// `tollgate keys`: create, list and revoke API keys in the state database. The settings (config file, flags,
/// TOLLGATE_*) are read as `serve` reads them, so the same users file and state directory are used; a running
/// server sees a new or revoked key within a second, without a reload. Run it as the server's user (the
/// database is that user's, mode 0600).
struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list or revoke API keys (tg_...) that log in as a user of the users file.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key for USER and print it once (only its hash is stored).")
        @Argument(help: "The user the key logs in as (a user of the users file).") var user: String
        @Option(name: .customLong("name"), help: "A label for the key (where it is used).") var keyName: String = ""
        @Option(help: ArgumentHelp("When the key stops working: a lifetime (90d, 12h, 2w) or a UTC date (YYYY-MM-DD).",
                                   valueName: "lifetime|date"))
        var expires: String?
        @Option(help: ArgumentHelp("The only models the key may name, comma-separated (within its user's).",
                                   valueName: "a,b")) var models: String?
        @OptionGroup var options: ServeOptions

        func run() throws {
            let startup = try Startup(options: options, mode: .admin)
            guard let users = startup.config.users else {
                throw StartupError("no users file: keys log in as a user of it (set users, or create one with tollgate users add)")
            }
            guard users.entries[user] != nil else {
                throw StartupError("\(user.debugDescription) is not a user in \(startup.config.usersPath ?? "the users file")"
                                   + (users.disabled.contains { $0.user == user } ? " (its line there is disabled)" : ""))
            }
            let now = KeyRing.wallClock()
            var expiry: Int64?
            if let expires {
                switch KeyExpiry.parse(expires, now: now) {
                case .success(let t): expiry = t
                case .failure(let error): throw StartupError(error.description)
                }
            }
            let modelList = (models ?? "").split(separator: ",").map { String($0.drop { $0 == " " }) }.filter { !$0.isEmpty }
            if models != nil && modelList.isEmpty { throw StartupError("--models names no model") }
            let store = try KeysCommand.open(startup, create: true)
            defer { store.close() }
            // An id drawn twice (60 bits: practically never) is drawn again.
            for _ in 0..<3 {
                let token = APIKeyToken.generate()
                let key = APIKey(id: token.id, user: user, name: keyName, hash: token.hash, created: now,
                                 expires: expiry, models: modelList)
                do {
                    try store.insert(key)
                } catch {
                    if (try? store.all().contains { $0.id == token.id }) == true { continue }
                    throw StartupError(error.description)
                }
                var facts = ["user \(user)"]
                if !keyName.isEmpty { facts.append("name \(keyName.debugDescription)") }
                facts.append(expiry.map { "expires \(KeysCommand.time($0))" } ?? "no expiry")
                if !modelList.isEmpty { facts.append("models \(modelList.joined(separator: ","))") }
                note("created key \(token.id) (\(facts.joined(separator: ", "))); it is shown only once:")
                print(token.secretText)
                return
            }
            throw StartupError("could not draw an unused key id")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List keys (all, or USER's): id, user, name, created, expires, last used, tokens, status. Never a secret.")
        @Argument(help: "Only this user's keys.") var user: String?
        @OptionGroup var options: ServeOptions

        func run() throws {
            let startup = try Startup(options: options, mode: .admin)
            guard let path = startup.config.databasePath, access(path, F_OK) == 0 else {
                print("no keys (no database yet)")
                return
            }
            let store = try KeysCommand.open(startup, create: false)
            defer { store.close() }
            let keys: [APIKey]
            do { keys = try store.all() } catch { throw StartupError(error.description) }
            // Tokens come from the usage ledger's rows (those its retention keeps).
            let tokens: [String: Int]
            do {
                tokens = try UsageStore(reading: path).tokensByKey()
            } catch {
                throw StartupError(error.description)
            }
            let now = KeyRing.wallClock()
            let users = startup.config.users
            let header = ["ID", "USER", "NAME", "CREATED", "EXPIRES", "LAST USED", "TOKENS", "STATUS"]
            // Names and users are escaped: a name given to `keys create` may hold terminal escape sequences.
            let rows = keys.filter { user == nil || $0.user == user }.map { key in
                [key.id, KeysCommand.escaped(key.user), key.name.isEmpty ? "-" : KeysCommand.escaped(key.name),
                 KeysCommand.time(key.created),
                 key.expires.map(KeysCommand.time) ?? "never", key.lastUsed.map(KeysCommand.time) ?? "never",
                 String(tokens[key.id] ?? 0), KeysCommand.status(key, now: now, users: users)]
            }
            guard !rows.isEmpty else {
                print(user.map { "no keys for \($0)" } ?? "no keys")
                return
            }
            var widths = header.map(\.count)
            for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
            for row in [header] + rows {
                let cells = row.enumerated().map { i, cell in
                    i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
                }
                print(cells.joined(separator: "  "))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a key by its id: a running server refuses it within a second.")
        @Argument(help: "The key's id (the part after tg_, as keys list shows it).") var id: String
        @OptionGroup var options: ServeOptions

        func run() throws {
            // A whole key pasted by mistake is reduced to its id; the secret is never echoed back.
            let keyID = APIKeyToken.parse(id).map(\.id) ?? id
            guard APIKeyToken.isValidID(keyID) else {
                throw StartupError("\(keyID.debugDescription) is not a key id (\(APIKeyToken.idLength) characters a-z, 2-7)")
            }
            let startup = try Startup(options: options, mode: .admin)
            let store = try KeysCommand.open(startup, create: false)
            defer { store.close() }
            let found: Bool
            do { found = try store.revoke(id: keyID, at: KeyRing.wallClock()) } catch { throw StartupError(error.description) }
            guard found else { throw StartupError("no key \(keyID)") }
            print("revoked key \(keyID)")
            // With redis, every server of the fleet refuses it too (they read the set on each poll).
            if let redis = startup.config.sharedLimits?.redis {
                do {
                    let address = try redis.resolve()
                    let client = BlockingRedis(configuration: redis, address: address,
                                               timeoutMillis: Int(max(1000, redis.commandTimeoutMillis)))
                    defer { client.close() }
                    try SharedKeyRevocations.publish(keyID, through: client)
                    print("published the revocation to the fleet through \(redis.redactedURL)")
                } catch {
                    throw StartupError("revoked in this server's database, but not published to the fleet through "
                                       + "\(redis.redactedURL): \(error); run keys revoke again once Redis answers")
                }
            }
        }
    }
}

/// What the `keys` subcommands share.
enum KeysCommand {
    /// The key store in the state database `serve` would use.
    static func open(_ startup: Startup, create: Bool) throws -> SQLiteKeyStore {
        guard let path = startup.config.databasePath else { throw StartupError("no state directory") }
        if !create && access(path, F_OK) != 0 { throw StartupError("no keys: \(path) does not exist yet") }
        let existed = access(path, F_OK) == 0
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) }
        let directoryExisted = directory.map { $0.isEmpty || access($0, F_OK) == 0 } ?? true
        let store: SQLiteKeyStore
        do {
            store = try SQLiteKeyStore(path: path, create: create)
        } catch {
            throw StartupError(error.description)
        }
        if !existed && geteuid() == 0 {
            giveToServer(path, directory: directoryExisted ? nil : directory, usersPath: startup.config.usersPath)
        }
        return store
    }

    /// Run by root (sudo) before the server ever ran, a new database (and a state directory created for it, 0700)
    /// would be root's and the server could not open them: they go to whoever owns the state directory when it is
    /// not root (the service user under systemd's StateDirectory), else to the users file's owner when that is not
    /// root (the account the server runs as, as `users` keeps a file's owner); with neither, a warning says so.
    static func giveToServer(_ path: String, directory created: String?, usersPath: String?) {
        var info = stat()
        var owner: (uid_t, gid_t)?
        if let slash = path.lastIndex(of: "/"), stat(String(path[..<slash]), &info) == 0, info.st_uid != 0 {
            owner = (info.st_uid, info.st_gid)
        } else if let usersPath, stat(usersPath, &info) == 0, info.st_uid != 0 {
            owner = (info.st_uid, info.st_gid)
        }
        guard let (uid, gid) = owner else {
            note("warning: \(created ?? path) was created owned by root; give it to the user the server runs as "
                 + "(chown -R USER \(created ?? path)), or the server cannot open it")
            return
        }
        if let created { _ = chown(created, uid, gid) }
        for file in [path, path + "-wal", path + "-shm"] where access(file, F_OK) == 0 { _ = chown(file, uid, gid) }
    }

    /// `active`, `revoked` or `expired`; `user removed` (`user disabled`) for a key in force whose user is no longer
    /// in (is disabled in) `users`.
    static func status(_ key: APIKey, now: Int64, users: UsersFile? = nil) -> String {
        if key.revoked != nil { return "revoked" }
        if let expires = key.expires, now >= expires { return "expired" }
        if let users, users.entries[key.user] == nil {
            return users.disabled.contains { $0.user == key.user } ? "user disabled" : "user removed"
        }
        return "active"
    }

    /// `text` with control characters (C0, DEL, C1) written as `\u{..}`, so printing it cannot drive the terminal.
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) || scalar == "\\" {
                out += scalar == "\\" ? "\\\\" : "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The state database `serve` would use with the users file `usersFile` (`--config`, `--state-dir` and
    /// `TOLLGATE_*` read as `keys` reads them), for the `users` commands.
    static func databasePath(usersFile: String, state: StateOptions) throws -> String {
        var flags = ["users": [usersFile]]
        if let dir = state.stateDir { flags["state-dir"] = [dir] }
        let loaded = ServerConfig.load(flags: flags, environment: Syscall.environment(), configPath: state.config)
        if let problem = loaded.problems.first(where: { $0.key == "state-dir" }) {
            throw StartupError("configuration: \(problem.description)")
        }
        return StateDatabase.path(in: StateDatabase.directory(configured: loaded.config.stateDirectory, usersPath: usersFile))
    }

    /// The keys of `user` not revoked yet, in the database at `path` (none when it does not exist).
    static func unrevokedKeys(of user: String, path: String) throws -> (store: SQLiteKeyStore, ids: Set<String>)? {
        guard access(path, F_OK) == 0 else { return nil }
        do {
            let store = try SQLiteKeyStore(path: path, create: false)
            do {
                return (store, Set(try store.all().filter { $0.user == user && $0.revoked == nil }.map(\.id)))
            } catch {
                store.close()
                throw error
            }
        } catch let error as KeyStoreError {
            throw StartupError(error.description)
        }
    }
}

/// Where the `users` commands find the key table: the settings `keys` reads (config file, `TOLLGATE_*`), with the
/// users file from `--file`.
struct StateOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp("Config file, for state-dir (default: $TOLLGATE_CONFIG, else /etc/tollgate/tollgate.conf when it exists).", valueName: "path"))
    var config: String?
    @Option(name: .customLong("state-dir"), help: ArgumentHelp("The server's state directory, where its API keys are (default: the state-dir setting, else state beside the users file).", valueName: "path"))
    var stateDir: String?
}

extension KeysCommand {

    /// `2026-12-04 23:40 UTC`-style, to the minute.
    static func time(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min))Z"
    }
}
