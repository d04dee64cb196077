import ArgumentParser
import Glibc
import Tollgate
import TollgateIO

/// `tollgate usage`: totals from the usage ledger, read-only (it works while the server writes: WAL).
struct Usage: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show tokens and requests from the usage ledger (the state database), grouped by user, model, key or day.")

    @Option(name: .customLong("config"), help: "The server's config file, naming its state-dir (and users file).")
    var config: String?

    @Option(name: .customLong("state-dir"), help: "The server's state directory (default: as the server finds it).")
    var stateDir: String?

    @Option(name: .customLong("since"), help: "How far back: e.g. 7d, 12h, 4w, or all.")
    var since: String = "7d"

    @Option(name: .customLong("by"), help: "Group by user, model, key or day.")
    var by: String = "user"

    @Option(name: .customLong("format"), help: "table, csv or json.")
    var format: String = "table"

    func run() throws {
        guard let grouping = UsageGrouping(rawValue: by) else {
            throw StartupError("--by \(by.debugDescription): expected user, model, key or day")
        }
        guard let output = UsageReport.Format(rawValue: format) else {
            throw StartupError("--format \(format.debugDescription): expected table, csv or json")
        }
        let start: Int64
        if since == "all" {
            start = 0
        } else if let seconds = DurationText.seconds(since) {
            start = UsageClock.nowMillis() - seconds * 1000
        } else {
            throw StartupError("--since \(since.debugDescription): expected a duration like 7d, 12h, 4w, or all")
        }
        // The same resolution as serve (flag > TOLLGATE_* > config file), for the two settings that locate the file.
        let resolved: ResolvedConfig
        do {
            resolved = try ConfigResolver.load(flags: [:], environment: Syscall.environment(), configPath: config)
        } catch {
            throw StartupError("configuration:\n\(error.description)")
        }
        let directory = StateDatabase.directory(configured: stateDir ?? resolved.string("state-dir"),
                                                usersPath: resolved.string("users"))
        let path = StateDatabase.path(in: directory)
        do {
            let store = try UsageStore(reading: path)
            let lines = try store.report(since: start, by: grouping)
            print(UsageReport.render(lines, by: grouping, format: output), terminator: "")
        } catch {
            throw StartupError("usage database: \(error.description) (is state-dir right? the server creates the "
                               + "file on its first start with ledger on)")
        }
    }
}
