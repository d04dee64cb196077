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
    /// A `redis` value, or any text that may hold a URL with credentials (a config line, an error message), with the
    /// credentials replaced by `***` (`redis://u:***@host`), for output and error messages. The rule errs towards
    /// hiding: whatever lies between the first `://` (any scheme, any case) and the last `@` after it is the userinfo,
    /// wherever `/`, `?` or `#` fall, and only a user name before its first `:` is kept. Text without both is
    /// returned as is.
    public static func redactedRedis(_ text: String) -> String {
        let bytes = Array(text.utf8)
        let colon = UInt8(ascii: ":"), slash = UInt8(ascii: "/")
        guard bytes.count >= 3,
              let start = (0...(bytes.count - 3)).first(where: {
                  bytes[$0] == colon && bytes[$0 + 1] == slash && bytes[$0 + 2] == slash
              }).map({ $0 + 3 }),
              let at = bytes[start...].lastIndex(of: UInt8(ascii: "@")) else { return text }
        let userinfo = bytes[start..<at]
        let user: [UInt8] = userinfo.firstIndex(of: colon).map { Array(userinfo[...$0]) } ?? []
        let redacted: [UInt8] = Array(bytes[..<start]) + user + Array("***".utf8) + Array(bytes[at...])
        return String(decoding: redacted, as: UTF8.self)
    }
}
