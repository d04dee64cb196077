/// Resolves every setting in `SettingDefinition.all` from flags, `TOLLGATE_*` variables, the config file and the
/// defaults, in that order of precedence.
///
/// A source replaces, never merges: a list given by flag ignores the file's items. Values are type- and
/// range-checked; addresses, URLs and CIDRs are checked by whoever builds the `ServerConfig`. Pure: no I/O except in
/// `load`, which reads the config file.
public enum ConfigResolver {
    /// Resolves with `file` already parsed (or nil for none).
    ///
    /// - Parameters:
    ///   - flags: only the flags the user gave, by setting name without dashes, values in command-line order.
    ///     A list takes every value; a scalar given twice takes the last; a bool flag given bare is `[]` (true).
    ///     Flag values are never split at commas.
    ///   - environment: the process environment; `TOLLGATE_<NAME>` variables are read, lists split at commas, an
    ///     empty list variable gives an empty list. Other `TOLLGATE_*` names become warnings.
    /// - Throws: every bad flag value (`--burst: ...`) and environment value (`TOLLGATE_BURST: ...`).
    public static func resolve(flags: [String: [String]], environment: [String: String],
                               file: ConfigFile?) throws(ConfigError) -> ResolvedConfig {
        let (resolved, problems) = resolveCollecting(flags: flags, environment: environment, file: file)
        guard problems.isEmpty else { throw ConfigError(problems) }
        return resolved
    }

    /// Resolves like `resolve`, but a bad flag or environment value falls back to the setting's default (shown as
    /// such) and its problem is returned beside the result, so that the other values can still be checked.
    static func resolveCollecting(flags: [String: [String]], environment: [String: String],
                                  file: ConfigFile?) -> (resolved: ResolvedConfig, problems: [ConfigProblem]) {
        var problems: [ConfigProblem] = []
        for name in flags.keys.sorted() where SettingDefinition.named(name) == nil {
            problems.append(ConfigProblem(.flag(name), key: name, "not a setting"))
        }
        var values: [String: SettingValue] = [:]
        var origins: [String: SettingOrigin] = [:]
        var itemLines: [String: [Int]] = [:]
        for definition in SettingDefinition.all {
            let name = definition.name
            if let given = flags[name] {
                switch definition.kind.parse(items: flagItems(given, kind: definition.kind)) {
                case .success(let value):
                    values[name] = value
                    origins[name] = .flag
                case .failure(let e):
                    problems.append(ConfigProblem(.flag(name), key: name, e.message))
                    values[name] = definition.defaultValue
                    origins[name] = .default
                }
            } else if let raw = environment[definition.environmentName] {
                let variable = definition.environmentName
                switch environmentValue(raw, kind: definition.kind) {
                case .success(let value):
                    values[name] = value
                    origins[name] = .environment(variable)
                case .failure(let e):
                    problems.append(ConfigProblem(.environment(variable), key: name, e.message))
                    values[name] = definition.defaultValue
                    origins[name] = .default
                }
            } else if let file, let entry = file.entries[name] {
                values[name] = entry.value
                origins[name] = .file(path: file.path, line: entry.line)
                itemLines[name] = file.itemLines[name]
            } else {
                values[name] = definition.defaultValue
                origins[name] = .default
            }
        }
        let resolved = ResolvedConfig(values: values, origins: origins, itemLines: itemLines, configPath: file?.path,
                                      warnings: unknownVariables(in: environment))
        return (resolved, problems)
    }

    /// Every setting at its table default: what `serve` resolves given no flag, no `TOLLGATE_*` variable and no
    /// config file.
    public static let defaults: ResolvedConfig = {
        do {
            return try resolve(flags: [:], environment: [:], file: nil)
        } catch {
            preconditionFailure("the settings table's defaults do not resolve: \(error)")
        }
    }()

    /// Locates the config file (`ConfigFile.locate`), reads it and resolves; the problems of the file, the flags
    /// and the environment are thrown together. Blocking file I/O.
    ///
    /// - Parameter configPath: the `--config` value, if given (a named file must exist; the default need not).
    public static func load(flags: [String: [String]], environment: [String: String],
                            configPath: String?) throws(ConfigError) -> ResolvedConfig {
        let (resolved, problems) = loadCollecting(flags: flags, environment: environment, configPath: configPath)
        guard problems.isEmpty else { throw ConfigError(problems) }
        return resolved
    }

    /// Loads like `load`, but resolves what the good lines, flags and variables say (a bad one falls back to its
    /// default) and returns every problem beside the result: the file's, then the flags' and environment's.
    static func loadCollecting(flags: [String: [String]], environment: [String: String],
                               configPath: String?) -> (resolved: ResolvedConfig, problems: [ConfigProblem]) {
        var problems: [ConfigProblem] = []
        var file: ConfigFile?
        if let path = ConfigFile.locate(flag: configPath, environment: environment) {
            let loaded = ConfigFile.loadCollecting(path: path)
            file = loaded.file
            problems += loaded.problems
        }
        let (resolved, more) = resolveCollecting(flags: flags, environment: environment, file: file)
        return (resolved, problems + more)
    }

    /// The items a flag's values stand for.
    private static func flagItems(_ given: [String], kind: SettingKind) -> [String] {
        if kind.isList { return given }
        if case .bool = kind, given.isEmpty { return ["true"] }
        return given.last.map { [$0] } ?? []
    }

    /// An environment variable's text as a value of `kind`: taken as is (no quotes, no comments, no trimming),
    /// lists split at commas.
    private static func environmentValue(_ raw: String, kind: SettingKind) -> Result<SettingValue, SettingValueError> {
        if kind == .lines {
            // Lines hold their own commas: items are separated by `;` instead.
            let items = raw.split(separator: ";", omittingEmptySubsequences: false).map { part -> String in
                var item = part
                while item.first == " " || item.first == "\t" { item.removeFirst() }
                while item.last == " " || item.last == "\t" { item.removeLast() }
                return String(item)
            }
            if items.allSatisfy(\.isEmpty) { return .success(.list([])) }
            if items.contains("") { return .failure(SettingValueError("empty item in list")) }
            return .success(.list(items))
        }
        if kind.isList {
            if raw.allSatisfy({ $0 == " " || $0 == "\t" }) { return .success(.list([])) }
            let items = ConfigFile.splitList(raw)
            if items.contains("") { return .failure(SettingValueError("empty item in list")) }
            return .success(.list(items))
        }
        if raw.isEmpty { return .failure(SettingValueError("is empty")) }
        return kind.parseScalar(raw)
    }

    /// One warning per `TOLLGATE_*` variable that names no setting (a typo would otherwise be silently ignored).
    private static func unknownVariables(in environment: [String: String]) -> [String] {
        let known = Set(SettingDefinition.all.map(\.environmentName)).union([ConfigFile.environmentVariable])
        return environment.keys.filter { $0.hasPrefix("TOLLGATE_") && !known.contains($0) }.sorted().map { variable in
            let key = String(variable.dropFirst("TOLLGATE_".count))
            let hint = SettingDefinition.suggestion(for: key).map {
                " (did you mean \(SettingDefinition.required($0).environmentName)?)"
            }
            return "\(variable) is not a Tollgate setting; ignored" + (hint ?? "")
        }
    }
}
