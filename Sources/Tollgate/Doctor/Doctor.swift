import Glibc
import TollgateIO

/// `tollgate doctor`: the debugging checklist for an Ollama host behind Tollgate, run in one go. Each check is a
/// `DoctorCheck` (✓, !, ✗ with the fix); every question to the host goes through `host`, so tests run it against a
/// fake /proc, canned commands and a fake Ollama. Blocking (files, commands, HTTP with a short timeout): run it on
/// the command's own thread, never on an event loop.
public struct Doctor: Sendable {
    /// What is being checked: the configuration as `serve` would load it, and what the command line adds.
    public struct Subject: Sendable {
        /// The configuration (zero values for settings with problems).
        public var config: ServerConfig
        /// The config file read, if any.
        public var configPath: String?
        /// Every configuration problem, each naming its file and line or its flag or variable.
        public var problems: [String]
        /// The users file `serve` would read (the default when none is configured), or nil.
        public var usersPath: String?
        /// Models that must be pulled; empty: the `model-allow` list, else `mistral`.
        public var expectedModels: [String] = []
        /// Trust store for the certificate chain; nil: the system's.
        public var caFile: String?
        /// Where Ollama keeps its models; nil: `OLLAMA_MODELS`, else the first of the usual places that exists.
        public var modelsDirectory: String?
        /// The limit for each question to Ollama.
        public var timeoutMillis: Int32 = 2000

        /// A subject from a loaded configuration.
        public init(config: ServerConfig, configPath: String?, problems: [String], usersPath: String?) {
            self.config = config
            self.configPath = configPath
            self.problems = problems
            self.usersPath = usersPath
        }
    }

    /// What is checked.
    public let subject: Subject
    /// What answers the questions.
    public let host: any DoctorHost

    /// Ollama's port when nothing else is known.
    public static let ollamaPort: UInt16 = 11434

    /// A doctor for `subject` on `host`.
    public init(subject: Subject, host: any DoctorHost) {
        self.subject = subject
        self.host = host
    }

    /// Runs every check, in the checklist's order.
    public func run() -> [DoctorCheck] {
        var checks: [DoctorCheck] = [configurationCheck()]
        checks += certificateChecks()
        checks += credentialChecks()
        let sockets = listeningSockets()
        checks += listenerChecks(sockets)
        let ollama = ollamaChecks()
        checks += ollama.checks
        checks.append(exposureCheck(sockets))
        checks += firewallChecks()
        checks += resourceChecks(models: ollama.models)
        checks.append(clockCheck())
        return checks
    }

    /// The configuration: every problem, by file and line.
    func configurationCheck() -> DoctorCheck {
        let source = subject.configPath ?? "no config file (flags, TOLLGATE_* and defaults)"
        guard subject.problems.isEmpty else {
            return DoctorCheck("configuration", .fail, "\(subject.problems.count) problem(s) in \(source):\n"
                               + subject.problems.joined(separator: "\n"),
                               fix: "correct the lines named above, then run tollgate check-config")
        }
        return DoctorCheck("configuration", .ok, "\(source): valid")
    }

    /// "2026-03-01" for seconds since the epoch.
    static func utcDate(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))"
    }

    /// "4.1 GiB".
    static func size(_ bytes: UInt64) -> String {
        let gib = Double(bytes) / Double(1 << 30)
        if gib >= 1 { return "\((gib * 10).rounded() / 10) GiB" }
        return "\(bytes >> 20) MiB"
    }
}
