import ArgumentParser
import Glibc
import Tollgate
import TollgateIO

/// `tollgate check-config`: validates exactly what `serve` would run (the configuration, upstream host names, the
/// certificate/key pair or the development pair `serve` would create, the users file), prints the settings with
/// where each came from, and exits non-zero on any problem, listing every one at once (like `nginx -t`).
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate configuration, certificate and users file; print the effective settings."
    )

    @OptionGroup var options: ServeOptions

    func run() throws {
        // The same loading as serve's (and a reload's): every problem at once, nothing created.
        let startup = try Startup(options: options, mode: .check)
        let config = startup.config
        for w in startup.resolved.warnings { note("warning: \(w)") }
        if let report = startup.certificateReport { note(report) }
        if let path = config.usersPath {
            note("users file \(path): \(config.users?.entries.count ?? 0) user(s)")
        }
        if let path = config.authorizedKeysPath, let keys = config.authorizedKeys {
            note("authorized keys \(path): \(keys.summary)")
        }
        for (i, backend) in config.upstreams.enumerated() {
            let limit = config.backendLimit(i).map { "max \($0) in flight" } ?? "no in-flight limit"
            let reachable = UpstreamProbe.reachable(backend.address.address) ? "reachable" : "not reachable now"
            let resolved = backend.address.hostHeader == backend.address.address.description
                ? "" : " (\(backend.address.address.hostString))"
            note("backend \(i + 1) http://\(backend.address.hostHeader)\(resolved): \(limit), \(reachable)")
        }
        if !config.policies.isEmpty {
            // Each line as it applies: a user's own keys over the `*` line's (keys neither sets follow the global
            // settings).
            for line in config.policies.summaryLines { note("policy \(line)") }
        }
        note(config.policies.modelOverridesSummary(admins: config.admins, authenticates: config.users != nil))
        print(startup.resolved.render(), terminator: "")
        note("configuration ok")
    }
}
