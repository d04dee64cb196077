import TollgateIO

extension ServerConfig {
    /// Builds a config from resolved settings (flag > environment > file > default): every row of
    /// `SettingDefinition.all` writes its field, checking what the table's kinds cannot (addresses, the upstream
    /// URLs, CIDRs, paths); then the rules that involve two settings. Every problem names the setting and where its
    /// value came from. Upstream host names are looked up here with `resolve` (a reload passes
    /// `reloadResolver`, which keeps the running addresses of unchanged names).
    /// The certificate and the users file are only named here; loading them (and creating the development ones) is
    /// the caller's side effect.
    ///
    /// - Parameters:
    ///   - cores: what the "one per core" defaults (`workers`, `auth-workers`) become.
    ///   - resolve: looks up upstream host names (getaddrinfo; blocking, so never build a config on an event loop).
    public init(resolved r: ResolvedConfig, cores: Int = ServerConfig.onlineCores(),
                resolve: @escaping HostResolver = SocketAddress.resolve) throws(ConfigError) {
        var problems: [ConfigProblem] = []
        self.init(resolved: r, cores: cores, resolve: resolve, problems: &problems)
        if !problems.isEmpty { throw ConfigError(problems) }
    }

    /// Builds a config like `init(resolved:cores:resolve:)`, appending every problem to `problems` instead of
    /// throwing: a setting with a problem keeps its zero value.
    init(resolved r: ResolvedConfig, cores: Int, resolve: @escaping HostResolver, problems: inout [ConfigProblem]) {
        self.init(zero: ())
        for setting in SettingDefinition.all {
            var reader = SettingReader(setting.name, resolved: r, cores: cores, resolve: resolve)
            setting.binding.store(&self, &reader)
            problems += reader.problems
        }

        // The default TLS listener applies only when no listener at all was configured.
        if r.origin("listen") == .default && !listenPlain.isEmpty { listen = [] }
        // The rules below involve settings whose own value may have been refused: then say nothing more about them.
        let refused = Set(problems.compactMap(\.key))
        if (certificatePath == nil) != (keyPath == nil) && refused.isDisjoint(with: ["cert", "key"]) {
            problems.append(ConfigProblem(setting: certificatePath == nil ? "key" : "cert", in: r,
                                          "cert and key go together"))
        }
        if !acmeDomains.isEmpty && listen.isEmpty && refused.isDisjoint(with: ["acme-domain", "listen"]) {
            problems.append(ConfigProblem(setting: "acme-domain", in: r,
                                          "the certificate needs a TLS listener to be served on: set listen"))
        }
        // The default metrics address may be taken by a second instance on the machine: then warn, not fail.
        metricsListenOptional = !metricsListen.isEmpty && r.origin("metrics-listen") == .default
        if listen.isEmpty && listenPlain.isEmpty && refused.isDisjoint(with: ["listen", "listen-plain"]) {
            problems.append(ConfigProblem(setting: "listen", in: r, "nothing to listen on: set listen or listen-plain"))
        }
    }
}
