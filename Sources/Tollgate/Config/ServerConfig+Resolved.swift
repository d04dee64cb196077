import TollgateIO

extension ServerConfig {
    /// Builds a config from resolved settings (flag > environment > file > default): every row of
    /// `SettingDefinition.all` writes its field, checking what the table's kinds cannot (addresses, the upstream
    /// URLs, CIDRs, paths); then the rules that involve two settings. Every problem names the setting and where its
    /// value came from. The certificate and the users file are only named here; loading them (and creating the
    /// development ones) is the caller's side effect.
    ///
    /// - Parameter cores: what the "one per core" defaults (`workers`, `auth-workers`) become.
    public init(resolved r: ResolvedConfig, cores: Int = ServerConfig.onlineCores()) throws(ConfigError) {
        self.init(zero: ())
        var problems: [ConfigProblem] = []
        for setting in SettingDefinition.all {
            var reader = SettingReader(setting.name, resolved: r, cores: cores)
            setting.binding.store(&self, &reader)
            problems += reader.problems
        }

        // The default TLS listener applies only when no listener at all was configured.
        if r.origin("listen") == .default && !listenPlain.isEmpty { listen = [] }
        if (certificatePath == nil) != (keyPath == nil) {
            problems.append(ConfigProblem(setting: certificatePath == nil ? "key" : "cert", in: r,
                                          "cert and key go together"))
        }
        // The default metrics address may be taken by a second instance on the machine: then warn, not fail.
        metricsListenOptional = !metricsListen.isEmpty && r.origin("metrics-listen") == .default
        if listen.isEmpty && listenPlain.isEmpty {
            problems.append(ConfigProblem(setting: "listen", in: r, "nothing to listen on: set listen or listen-plain"))
        }
        if !problems.isEmpty { throw ConfigError(problems) }
    }
}
