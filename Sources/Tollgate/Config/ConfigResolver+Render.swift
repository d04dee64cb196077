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
            case .string(let text)? where name == "redis":
                // The password never reaches check-config's output (nor a terminal's scrollback).
                rows.append(("\(name) = \(SettingValue.string(ResolvedConfig.redactedRedis(text)).fileText)", "# from \(source)"))
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

extension ResolvedConfig {
    /// A `redis` value with its password replaced by `***` (`redis://u:***@host`), for output and error messages;
    /// text without credentials is returned as is.
    public static func redactedRedis(_ text: String) -> String {
        let scheme = "redis://"
        guard text.hasPrefix(scheme) else { return text }
        let rest = text.dropFirst(scheme.count)
        let authority = rest.prefix { $0 != "/" }
        guard let at = authority.lastIndex(of: "@") else { return text }
        let userinfo = authority[..<at]
        let user = userinfo.firstIndex(of: ":").map { String(userinfo[..<$0]) + ":" } ?? ":"
        return scheme + user + "***" + String(rest[at...])
    }
}
