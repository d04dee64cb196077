/// Why a configuration could not be used: every problem found, not just the first.
///
/// Its description is one line per problem, e.g.
/// `/etc/tollgate/tollgate.conf:7: key "burst": expected an integer, got "lots"` or
/// `TOLLGATE_RATE: expected a number, got "fast"`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// In the order found: file lines top to bottom, then flags and environment variables in table order.
    public var problems: [ConfigProblem]

    /// An error made of `problems` (at least one).
    public init(_ problems: [ConfigProblem]) {
        self.problems = problems
    }

    /// One line per problem.
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}

/// One thing wrong with the configuration, with where it is.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    /// Where the bad text is.
    public enum Location: Sendable, Equatable {
        /// A config file, and the 1-based line unless the whole file is the problem (missing, unreadable).
        case file(path: String, line: Int?)
        /// An environment variable, by name.
        case environment(String)
        /// A command-line flag, by setting name (without dashes).
        case flag(String)
    }

    /// Where the bad text is.
    public var location: Location
    /// The setting concerned, when the problem is about one (always for environment variables and flags).
    public var key: String?
    /// What is wrong, without location or key.
    public var message: String

    /// Creates a problem at `location` about `key`.
    public init(_ location: Location, key: String?, _ message: String) {
        self.location = location
        self.key = key
        self.message = message
    }

    /// `FILE:LINE: key "X": message`, `FILE: message`, `TOLLGATE_X: message` or `--x: message`; any credentials in
    /// a URL the message quotes are replaced by `***` (`ResolvedConfig.redactedRedis`).
    public var description: String {
        let message = ResolvedConfig.redactedRedis(message)
        switch location {
        case .file(let path, let line):
            let place = line.map { "\(path):\($0)" } ?? path
            if let key { return "\(place): key \(key.debugDescription): \(message)" }
            return "\(place): \(message)"
        case .environment(let variable):
            return "\(variable): \(message)"
        case .flag(let name):
            return "--\(name): \(message)"
        }
    }
}
