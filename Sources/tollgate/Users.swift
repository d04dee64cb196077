import ArgumentParser
import Glibc
import Tollgate

/// `tollgate users`: manage the htpasswd-style users file. Changes are picked up by a running server within a
/// second (it watches the file), without a restart.
struct Users: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add, change, remove, list or verify users in the users file.",
        subcommands: [Add.self, Passwd.self, Remove.self, List.self, Verify.self]
    )

    /// How a command gets a password.
    struct PasswordSource: ParsableArguments {
        @Flag(name: .customLong("password-stdin"), help: "Read the password from the first line of standard input (scripts).")
        var passwordStdin = false

        @Flag(help: "Generate a random password and print it once.")
        var generate = false

        @Flag(name: .customLong("allow-weak-password"),
              help: "Accept a password shorter than \(UsersFileEditor.minimumPasswordLength) characters or equal to the user name.")
        var allowWeakPassword = false

        /// The password: from stdin, generated, or typed twice without echo at the terminal.
        func obtain(confirm: Bool) throws -> (password: String, generated: Bool) {
            if passwordStdin {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                    throw ValidationError("no password on standard input")
                }
                return (line, false)
            }
            if generate { return (UsersFileEditor.generatePassword(), true) }
            guard isatty(0) == 1 else {
                throw ValidationError("standard input is not a terminal: give --password-stdin or --generate")
            }
            let first = try Terminal.readSecret("Password: ")
            guard !first.isEmpty else { throw ValidationError("empty password") }
            if confirm {
                let second = try Terminal.readSecret("Password again: ")
                guard first == second else { throw ValidationError("the passwords differ") }
            }
            return (first, false)
        }
    }

    struct FileOption: ParsableArguments {
        @Option(help: "Users file.") var file: String = "users.htpasswd"
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a new user (bcrypt); an existing user's password is changed with `users passwd`.")
        @Argument(help: "User name.") var name: String
        @OptionGroup var file: FileOption
        @Option(help: "bcrypt cost (4-17); each +1 doubles the work. Verified passwords are cached, so the cost is paid once per client.")
        var cost: Int = UsersFileEditor.defaultCost
        @OptionGroup var source: PasswordSource
        @OptionGroup var state: StateOptions

        func run() throws {
            let (password, generated) = try source.obtain(confirm: true)
            try edit {
                try UsersFileEditor.setPassword(path: file.file, user: name, password: password, cost: cost,
                                                presence: .mustNotExist, allowWeakPassword: source.allowWeakPassword)
            }
            report(name, file.file, password, generated)
            // Keys are tied to the name: unrevoked ones left by an earlier user of that name now log in as this one.
            do {
                let path = try KeysCommand.databasePath(usersFile: file.file, state: state)
                if let (store, ids) = try KeysCommand.unrevokedKeys(of: name, path: path) {
                    store.close()
                    if !ids.isEmpty {
                        note("warning: \(ids.count) API key(s) not revoked in \(path) name \(name) (\(ids.sorted().joined(separator: ", "))) "
                             + "and now log in as this user; if they belonged to an earlier \(name), revoke them with "
                             + "tollgate keys revoke ID")
                    }
                }
            } catch {
                note("warning: could not check the API keys naming \(name): \(error)")
            }
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change an existing user's password (bcrypt).")
        @Argument(help: "User name.") var name: String
        @OptionGroup var file: FileOption
        @Option(help: "bcrypt cost (4-17).") var cost: Int = UsersFileEditor.defaultCost
        @OptionGroup var source: PasswordSource

        func run() throws {
            let (password, generated) = try source.obtain(confirm: true)
            try edit {
                try UsersFileEditor.setPassword(path: file.file, user: name, password: password, cost: cost,
                                                presence: .mustExist, allowWeakPassword: source.allowWeakPassword)
            }
            report(name, file.file, password, generated)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user.")
        @Argument(help: "User name.") var name: String
        @OptionGroup var file: FileOption
        @Option(name: .customLong("authorized-keys"),
                help: "The server's authorized-keys file, to name the ollama keys that still log in as the user (default: $TOLLGATE_AUTHORIZED_KEYS).")
        var authorizedKeys: String?
        @OptionGroup var state: StateOptions

        func run() throws {
            try edit { try UsersFileEditor.remove(path: file.file, user: name) }
            print("removed \(name) from \(file.file)")
            // The user's API keys are revoked: keys are tied to the name, and a user added later under it must not
            // inherit them.
            do {
                let path = try KeysCommand.databasePath(usersFile: file.file, state: state)
                if let (store, ids) = try KeysCommand.unrevokedKeys(of: name, path: path) {
                    defer { store.close() }
                    let count: Int
                    do { count = try store.revoke(ids: ids, at: KeyRing.wallClock()) } catch { throw StartupError(error.description) }
                    print("revoked \(count) API key(s) of \(name) in \(path)")
                } else {
                    print("revoked 0 API keys of \(name) (no key table at \(path))")
                }
            } catch {
                throw StartupError("removed \(name), but could not revoke its API keys: \(error); revoke them with "
                                   + "tollgate keys revoke ID")
            }
            // The key lines stay behind: harmless now (a key logs in only as a user in the users file), but adding
            // a user of that name again would bring the key back with it.
            guard let path = authorizedKeys ?? getenv("TOLLGATE_AUTHORIZED_KEYS").map({ String(cString: $0) }),
                  !path.isEmpty else { return }
            do {
                let keys = try AuthorizedKeys.load(path: path)
                for entry in keys.keys.values.sorted(by: { $0.line < $1.line }) where entry.user == name {
                    note("warning: \(path):\(entry.line): the ollama key \(entry.fingerprint) still names \(name); it cannot "
                               + "log in without the user, but would again if \(name) were added back: remove the line too")
                }
            } catch {
                note("warning: could not check \(error.description) for keys naming \(name)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List users and their hash formats, and the lines that disable their user.")
        @OptionGroup var file: FileOption

        func run() throws {
            let users: UsersFile
            do { users = try UsersFile.load(path: file.file) } catch { throw StartupError(error.description) }
            var rows = users.entries.values.map { (line: $0.line, text: "\($0.name)\t\($0.format)\tline \($0.line)") }
            rows += users.disabled.map { line in
                (line: line.line, text: "\(line.user ?? "-")\tdisabled: \(line.reason)\tline \(line.line)")
            }
            for row in rows.sorted(by: { $0.line < $1.line }) { print(row.text) }
            for w in users.warnings { print("warning: \(w)") }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a user's password (exit 0 if right, 1 if wrong).")
        @Argument(help: "User name.") var name: String
        @OptionGroup var file: FileOption
        @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input.")
        var passwordStdin = false

        func run() throws {
            let password: String
            if passwordStdin {
                password = readLine(strippingNewline: true) ?? ""
            } else {
                guard isatty(0) == 1 else { throw ValidationError("standard input is not a terminal: give --password-stdin") }
                password = try Terminal.readSecret("Password: ")
            }
            let ok: Bool
            do { ok = try UsersFileEditor.verify(path: file.file, user: name, password: password) } catch {
                throw StartupError(error.description)
            }
            print(ok ? "password for \(name) is correct" : "password for \(name) is wrong")
            if !ok { throw ExitCode(1) }
        }
    }
}

private func edit(_ body: () throws -> Void) throws {
    do { try body() } catch let error as UsersFileEditor.EditError { throw StartupError(error.description) }
}

private func report(_ name: String, _ file: String, _ password: String, _ generated: Bool) {
    if generated {
        print("set the password of \(name) in \(file); shown only once:")
        print("\(name):\(password)")
    } else {
        print("set the password of \(name) in \(file)")
    }
}

/// Reading a secret from the terminal without echo.
enum Terminal {
    static func readSecret(_ prompt: String) throws -> String {
        _ = prompt.withCString { write(2, $0, strlen($0)) }
        var saved = termios()
        let hasTerminal = tcgetattr(0, &saved) == 0
        if hasTerminal {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSAFLUSH, &quiet)
        }
        defer {
            if hasTerminal { tcsetattr(0, TCSAFLUSH, &saved) }
            _ = "\n".withCString { write(2, $0, 1) }
        }
        guard let line = readLine(strippingNewline: true) else { throw ValidationError("no password entered") }
        return line
    }
}
