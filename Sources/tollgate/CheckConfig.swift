import ArgumentParser
import Glibc
import Tollgate
import TollgateIO

/// `tollgate check-config`: validates the configuration, the certificate/key pair and the users file, prints the
/// settings it would run with and where each came from, and exits non-zero on any problem (like `nginx -t`).
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate configuration, certificate and users file; print the effective settings."
    )

    @OptionGroup var options: ServeOptions

    func run() throws {
        let startup = try Startup(options: options, sideEffects: false)
        let config = startup.config
        for w in startup.resolved.warnings { note("warning: \(w)") }
        if let cert = config.certificatePath, let key = config.keyPath, !config.listen.isEmpty {
            do {
                let tls = try TLSContext(certificatePath: cert, keyPath: key)
                let days = (tls.notAfter - Int64(time(nil))) / 86_400
                note("certificate \(cert): ok, expires in \(days) day(s)")
                if days < 14 { note("warning: certificate \(cert) expires in \(days) day(s)") }
            } catch {
                throw StartupError(error.description)
            }
        }
        note("users file \(config.usersPath ?? "-"): \(config.users?.entries.count ?? 0) user(s)")
        for (i, backend) in config.upstreams.enumerated() {
            let limit = config.backendLimit(i).map { "max \($0) in flight" } ?? "no in-flight limit"
            let reachable = UpstreamProbe.reachable(backend.address.address) ? "reachable" : "not reachable now"
            note("backend \(i + 1) http://\(backend.address.hostHeader): \(limit), \(reachable)")
        }
        print(startup.resolved.render(), terminator: "")
        note("configuration ok")
    }
}

/// `tollgate reload`: signals the running server (SIGHUP) through its pid file: certificate and users file reload
/// without dropping a connection.
struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask the running server to reload (SIGHUP via its pid file).")

    @Option(name: .customLong("pid-file"), help: "The server's pid file (default: the pid-file setting).")
    var pidFile: String?

    @Option(name: .customLong("config"), help: "Config file naming the pid file.")
    var config: String?

    func run() throws {
        var path = pidFile
        if path == nil {
            let resolved = try? ConfigResolver.load(flags: [:], environment: Syscall.environment(), configPath: config)
            path = resolved?.string("pid-file")
        }
        guard let path else { throw StartupError("no pid file: give --pid-file or set pid-file in the config") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StartupError("cannot open \(path): \(Syscall.describe(errno))") }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buffer, buffer.count)
        close(fd)
        let text = String(decoding: buffer.prefix(max(0, n)), as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        guard let pid = Int32(text), pid > 1 else { throw StartupError("\(path) does not hold a process id") }
        guard kill(pid, SIGHUP) == 0 else { throw StartupError("cannot signal process \(pid): \(Syscall.describe(errno))") }
        print("sent SIGHUP to tollgate (pid \(pid))")
    }
}
