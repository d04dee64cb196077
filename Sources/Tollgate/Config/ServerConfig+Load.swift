import TollgateIO

extension ServerConfig {
    /// Reads the configuration as `serve` does at start and on reload, and `check-config` does: locates and parses
    /// the config file, resolves every setting (flag > environment > file > default) and builds the config, looking
    /// up upstream host names. Every problem is returned at once: the config file's by line, then the flags' and
    /// environment variables'. A setting whose text is bad is not also reported for its value. With any problem the
    /// config holds zero values for the settings concerned and is for further checks only.
    /// Blocking file I/O and name lookups: never on an event loop.
    public static func load(flags: [String: [String]], environment: [String: String], configPath: String?,
                            cores: Int = ServerConfig.onlineCores(), resolve: @escaping HostResolver = SocketAddress.resolve)
        -> (resolved: ResolvedConfig, config: ServerConfig, problems: [ConfigProblem]) {
        var (resolved, problems) = ConfigResolver.loadCollecting(flags: flags, environment: environment,
                                                                 configPath: configPath)
        let badText = Set(problems.compactMap(\.key))
        var valueProblems: [ConfigProblem] = []
        let config = ServerConfig(resolved: resolved, cores: cores, resolve: resolve, problems: &valueProblems)
        problems += valueProblems.filter { $0.key.map { !badText.contains($0) } ?? true }
        return (resolved, config, ordered(problems))
    }

    /// The resolver for a reload of a server running `running`: an upstream host name and port it already runs
    /// with keep the address they resolved to at start (`upstream` needs a restart to change, so looking it up again
    /// could only make the reload fail, when DNS is down); any other name is looked up with `resolve` (and the
    /// change then reported as needing a restart).
    public static func reloadResolver(running: ServerConfig,
                                      resolve: @escaping HostResolver = SocketAddress.resolve) -> HostResolver {
        var known: [String: SocketAddress] = [:]
        for backend in running.upstreams { known[backend.address.hostHeader] = backend.address.address }
        return { host, port throws(SocketError) in
            if let address = known["\(host):\(port)"] { return address }
            return try resolve(host, port)
        }
    }

    /// The config file's problems by line (a line's text before its value), then the others in the order found.
    private static func ordered(_ problems: [ConfigProblem]) -> [ConfigProblem] {
        func line(_ p: ConfigProblem) -> Int? {
            if case .file(_, let line) = p.location { return line ?? 0 }
            return nil
        }
        let inFile = problems.enumerated().filter { line($0.element) != nil }
            .sorted { (line($0.element)!, $0.offset) < (line($1.element)!, $1.offset) }.map(\.element)
        return inFile + problems.filter { line($0) == nil }
    }
}
