import ArgumentParser
import Glibc
import Tollgate
import TollgateIO

/// `tollgate doctor`: checks the whole host the way an admin debugging it would (configuration, certificate,
/// users, listeners, Ollama and whether it is exposed, firewall, memory and disk, clock) and prints a checklist
/// with the fix under each problem; exits 1 when any check failed.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the configuration, certificate, users, listeners, Ollama (and whether it is exposed beyond "
            + "loopback), firewall, memory, disk and clock; print a checklist with fixes."
    )

    @OptionGroup var options: ServeOptions

    @Flag(name: .customLong("json"), help: "Print the checks as one JSON object, for scripts.")
    var json = false

    @Option(name: .customLong("model"), help: "A model that must be pulled (repeatable). Default: model-allow, else mistral.")
    var models: [String] = []

    @Option(name: .customLong("ca-file"), help: "Trust store to verify the certificate chain with (default: the system's).")
    var caFile: String?

    @Option(name: .customLong("models-dir"), help: "Ollama's models folder (default: $OLLAMA_MODELS, else the usual places).")
    var modelsDirectory: String?

    @Option(name: .customLong("proc-root"), help: ArgumentHelp("Where procfs is mounted (tests use a fake one).",
                                                                visibility: .hidden))
    var procRoot: String = "/proc"

    @Option(name: .customLong("timeout"), help: "How long to wait for each answer from Ollama, e.g. 2s or 500ms.")
    var timeout: String = "2s"

    func run() throws {
        guard let millis = DoctorCommand.millis(timeout) else {
            throw StartupError("--timeout \(timeout.debugDescription): expected a duration like 2s or 500ms")
        }
        // The same loading as serve's, but nothing is created and every problem is one check's detail.
        let loaded = ServerConfig.load(flags: options.givenFlags, environment: Syscall.environment(),
                                       configPath: options.config)
        var config = loaded.config
        if !config.listen.isEmpty && config.certificatePath == nil {
            let (cert, key) = DevelopmentCertificate.paths(in: Startup.developmentDirectory)
            if access(cert, F_OK) == 0 {
                config.certificatePath = cert
                config.keyPath = key
            }
        }
        let usersPath = loaded.resolved.string("users")
            ?? (access(Startup.defaultUsersPath, F_OK) == 0 ? Startup.defaultUsersPath : nil)
        config.databasePath = StateDatabase.path(in: StateDatabase.directory(configured: config.stateDirectory,
                                                                              usersPath: usersPath))
        var subject = Doctor.Subject(config: config, configPath: loaded.resolved.configPath,
                                     problems: loaded.problems.map(\.description), usersPath: usersPath)
        subject.expectedModels = models
        subject.caFile = caFile
        subject.modelsDirectory = modelsDirectory
        subject.timeoutMillis = millis
        let checks = Doctor(subject: subject, host: SystemDoctorHost(procRoot: procRoot)).run()
        print(json ? DoctorReport.json(checks) : DoctorReport.text(checks), terminator: "")
        let status = DoctorReport.exitStatus(checks)
        if status != 0 { throw ExitCode(status) }
    }

    /// "2s", "500ms", "1.5s" in milliseconds.
    static func millis(_ text: String) -> Int32? {
        if text.hasSuffix("ms"), let n = Int32(text.dropLast(2)), n > 0 { return n }
        if text.hasSuffix("s"), let n = Double(text.dropLast()), n > 0, n < 600 { return Int32(n * 1000) }
        return nil
    }
}
