import ArgumentParser
import Glibc
import Tollgate
import TollgateIO

/// `tollgate reload`: signals the running server (SIGHUP) and waits for it to say what became of the reload,
/// through the status file in its state directory (`ReloadStatus`): exit 0 when the new configuration, certificate
/// and users file were applied, else the server's errors (each naming file and line) and exit 1.
struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the running server to reload (SIGHUP) and report whether it applied the new configuration.")

    @Option(name: .customLong("config"), help: "The server's config file, naming its state-dir or pid-file.")
    var config: String?

    @Option(name: .customLong("state-dir"), help: "The server's state directory (default: as the server finds it).")
    var stateDir: String?

    @Option(name: .customLong("pid-file"), help: "The server's pid file (default: the pid-file setting).")
    var pidFile: String?

    @Option(name: .customLong("timeout"), help: "Seconds to wait for the server's answer.")
    var timeout: Double = 30

    func run() throws {
        let environment = Syscall.environment()
        // Only the two paths are needed: a config that no longer loads is for the server to report.
        let resolved = try? ConfigResolver.load(flags: [:], environment: environment, configPath: config)
        let pidFile = pidFile ?? resolved?.string("pid-file")
        let stateDir = stateDir ?? resolved?.string("state-dir")
        // The server took a relative path against the directory it was started in, which this shell need not share.
        for (name, path) in [("state-dir", stateDir), ("pid-file", pidFile)] {
            if let path, !path.isEmpty, !path.hasPrefix("/") {
                throw StartupError("\(name) \(ReloadStatus.printable(path).debugDescription) is relative: give "
                                   + "the absolute path the server runs with (--\(name))")
            }
        }
        let candidates = ReloadStatus.candidates(stateDir: stateDir, pidFile: pidFile, environment: environment)
        guard !candidates.isEmpty else {
            throw StartupError("cannot find the server's state directory: give --state-dir, or set state-dir "
                               + "(or pid-file) in the config")
        }
        guard let (directory, before) = candidates.lazy.compactMap({ d in ReloadStatus.read(from: d).map { (d, $0) } })
            .first else {
            let places = candidates.map { "\($0)/\(ReloadStatus.fileName)" }.joined(separator: ", ")
            throw StartupError("no running tollgate found: no \(places) (is the server running, with this "
                               + "state directory?)")
        }
        let pid = before.pid
        let file = "\(directory)/\(ReloadStatus.fileName)"
        // The file only names a process: that it is a tollgate server, and that only root or the server's user
        // could have written the file, is checked before it gets a signal (SIGHUP ends most other programs).
        let owner: uid_t
        switch ReloadStatus.target(pid) {
        case .notRunning:
            throw StartupError("cannot signal tollgate (pid \(pid) from \(file)): it is not running")
        case .other:
            throw StartupError("the status file names pid \(pid), which is not a tollgate server; remove \(file) "
                               + "if stale")
        case .server(let uid):
            owner = uid
        }
        if let problem = ReloadStatus.distrust(in: directory, owner: owner) {
            throw StartupError("not signalling pid \(pid): \(problem)")
        }
        guard kill(pid, SIGHUP) == 0 else {
            let reason = errno == ESRCH ? "it is not running" : Syscall.describe(errno)
            throw StartupError("cannot signal tollgate (pid \(pid) from \(file)): \(reason)")
        }
        // Poll the status file until the server has written a newer generation (it reloads on its signal thread).
        var waited = 0.0
        let step = 0.05
        while true {
            if ReloadStatus.distrust(in: directory, owner: owner) == nil, let now = ReloadStatus.read(from: directory),
               now.pid == pid, now.generation > before.generation {
                // What the server said is printed as text: control characters escaped.
                let lines = now.messages.map { "  " + ReloadStatus.printable($0) }
                if now.ok {
                    print("tollgate (pid \(pid)) reloaded:")
                    for line in lines { print(line) }
                    return
                }
                throw StartupError("reload failed; the server keeps running as it was:\n"
                                   + lines.joined(separator: "\n"))
            }
            if kill(pid, 0) != 0 && errno == ESRCH {
                throw StartupError("tollgate (pid \(pid)) exited before reporting on the reload; see its log")
            }
            if waited >= timeout {
                throw StartupError("tollgate (pid \(pid)) got SIGHUP but reported no outcome in "
                                   + "\(file) within \(Int(timeout)) s; see its log")
            }
            usleep(useconds_t(step * 1_000_000))
            waited += step
        }
    }
}
