import ArgumentParser
import Glibc
import Tollgate

/// `tollgate users`: manage the htpasswd-style users file. Changes are picked up by a running server within a
/// second (it watches the file), without a restart.
struct Users: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add, remove or list users in the users file.",
        subcommands: [Add.self, Remove.self, List.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user, or set an existing user's password (bcrypt).")
        @Argument(help: "User name.") var name: String
        @Option(help: "Users file.") var file: String = "users.htpasswd"
        @Option(help: "bcrypt cost (4-17); each +1 doubles the work. Verified passwords are cached, so 10 is cheap.") var cost: Int = 10
        @Flag(name: .customLong("password-stdin"), help: "Read the password from the first line of standard input instead of generating one.")
        var passwordStdin = false

        func run() throws {
            var password: String
            if passwordStdin {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                    throw ValidationError("no password on standard input")
                }
                password = line
            } else {
                password = UsersFileEditor.generatePassword()
            }
            do {
                try UsersFileEditor.setPassword(path: file, user: name, password: password, cost: cost)
            } catch {
                throw StartupError(error.description)
            }
            if passwordStdin {
                print("set the password of \(name) in \(file)")
            } else {
                print("set the password of \(name) in \(file); shown only once:")
                print("\(name):\(password)")
            }
            password = ""
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user.")
        @Argument(help: "User name.") var name: String
        @Option(help: "Users file.") var file: String = "users.htpasswd"

        func run() throws {
            do {
                try UsersFileEditor.remove(path: file, user: name)
            } catch {
                throw StartupError(error.description)
            }
            print("removed \(name) from \(file)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users and their hash formats.")
        @Option(help: "Users file.") var file: String = "users.htpasswd"

        func run() throws {
            let users: UsersFile
            do {
                users = try UsersFile.load(path: file)
            } catch {
                throw StartupError(error.description)
            }
            for entry in users.entries.values.sorted(by: { $0.line < $1.line }) {
                print("\(entry.name)\t\(entry.format)\tline \(entry.line)")
            }
            for w in users.warnings { print("warning: \(w)") }
        }
    }
}
