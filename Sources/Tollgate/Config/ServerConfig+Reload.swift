extension ServerConfig {
    /// What a reload from this config to `new` runs with, and which changed settings it could not apply.
    ///
    /// Every setting the table marks `.reloadable` takes `new`'s value; every `.restart` one keeps this config's
    /// value, and those whose value differs are returned by name, in table order. The users file's contents stay
    /// as loaded: its watcher reloads them. Pure: the caller hands the result to the loops.
    public func reloaded(to new: ServerConfig) -> (config: ServerConfig, needRestart: [String]) {
        var merged = new
        var needRestart: [String] = []
        for setting in SettingDefinition.all where setting.reload == .restart {
            if setting.binding.differs(self, new) { needRestart.append(setting.name) }
            setting.binding.keep(&merged, self)
        }
        merged.users = users
        merged.authorizedKeys = authorizedKeys
        merged.metricsListenOptional = metricsListenOptional
        return (merged, needRestart)
    }
}
