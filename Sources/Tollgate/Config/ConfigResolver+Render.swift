extension ResolvedConfig {
    /// The effective settings as config-file text, each with a `# from …` comment naming its source, in table
    /// order; unset settings and empty lists appear as comments. For `tollgate check-config`; the text parses back
    /// with `ConfigFile.parse` to the same values.
    public func render() -> String {
        var rows: [(setting: String, origin: String)] = []
        for definition in SettingDefinition.all {
            let name = definition.name
            let source = origin(name).describe(setting: name)
            switch values[name] {
            case nil:
                rows.append(("# \(name) is not set", ""))
            case .list(let items)? where items.isEmpty:
                rows.append(("# \(name) is empty", "# from \(source)"))
            case let value?:
                rows.append(("\(name) = \(value.fileText)", "# from \(source)"))
            }
        }
        let width = min(56, rows.map { $0.setting.count }.max() ?? 0)
        var out = "# Effective Tollgate settings: flag > TOLLGATE_* environment > "
            + (configPath.map { "config file \($0)" } ?? "config file (none)") + " > default\n"
        for row in rows {
            var line = row.setting
            if !row.origin.isEmpty {
                line += String(repeating: " ", count: max(1, width - line.count + 2)) + row.origin
            }
            out += line + "\n"
        }
        return out
    }
}
