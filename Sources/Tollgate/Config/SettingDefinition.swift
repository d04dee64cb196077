/// One configurable setting: its name, kind, default, whether a reload applies it, the `ServerConfig` field it
/// fills, and its help.
///
/// `SettingDefinition.all` is the single source of truth; its doc comment says what adding a setting takes. A
/// setting's name is its config-file key, its `tollgate serve` flag with two dashes in front (`flag`), and,
/// uppercased with `-` → `_` and prefixed `TOLLGATE_`, its environment variable (`environmentName`).
public struct SettingDefinition: Sendable {
    /// The key: `head-timeout` (flag `--head-timeout`, variable `TOLLGATE_HEAD_TIMEOUT`).
    public var name: String
    /// How its value is read and which `ResolvedConfig` accessor returns it.
    public var kind: SettingKind
    /// One line for `--help`, check-config and the example file.
    public var help: String
    /// The default as it would be written in the file (parsed with `kind`), or nil when unset by default. The only
    /// place a setting's default is written down.
    public var defaultText: String?
    /// Whether a reload (SIGHUP) applies a changed value, or it keeps the old one until a restart.
    public var reload: SettingReload
    /// Where its value lives in a `ServerConfig`: written when a config is built, compared and kept by a reload.
    let binding: SettingBinding

    /// Creates a definition; `defaultText` must parse as `kind` and `binding` must read the accessor `kind`
    /// selects (the table's tests build a config from every row).
    init(_ name: String, _ kind: SettingKind, default defaultText: String?, _ reload: SettingReload,
         _ binding: SettingBinding, _ help: String) {
        self.name = name
        self.kind = kind
        self.defaultText = defaultText
        self.reload = reload
        self.binding = binding
        self.help = help
    }

    /// `--` + the name: `--head-timeout`.
    public var flag: String { "--" + name }

    /// `TOLLGATE_` + the name uppercased with `-` → `_`: `TOLLGATE_HEAD_TIMEOUT`.
    public var environmentName: String {
        "TOLLGATE_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
    }

    /// Whether a reload applies a changed value (false: restart-only).
    public var reloadable: Bool { reload == .reloadable }

    /// The help shown for its `serve` flag: `help`, then `(default: …)` when it has a default.
    public var flagHelp: String {
        help + (defaultText.map { " (default: \($0))" } ?? "")
    }

    /// The default as a typed value; nil when the setting has none.
    public var defaultValue: SettingValue? {
        guard let defaultText else { return nil }
        let items = kind.isList ? ConfigFile.splitList(defaultText) : [defaultText]
        switch kind.parse(items: items) {
        case .success(let value): return value
        case .failure(let e): preconditionFailure("default of \(name) does not parse: \(e.message)")
        }
    }

    /// Whether `a` and `b` hold different values of this setting.
    public func differs(_ a: ServerConfig, _ b: ServerConfig) -> Bool {
        binding.differs(a, b)
    }

    /// The definition called `name`, or nil.
    public static func named(_ name: String) -> SettingDefinition? { byName[name] }

    /// `all` by name.
    static let byName: [String: SettingDefinition] = {
        var table: [String: SettingDefinition] = [:]
        for d in all { table[d.name] = d }
        return table
    }()

    /// The definition called `name`, for accessors that are only ever called with table names.
    static func required(_ name: String) -> SettingDefinition {
        guard let d = byName[name] else { preconditionFailure("\(name) is not in SettingDefinition.all") }
        return d
    }
}

/// Whether a reload applies a setting.
public enum SettingReload: Sendable, Equatable {
    /// A reload applies it: new requests (or new connections) see the new value.
    case reloadable
    /// It shapes sockets, threads or shared state made at start-up: a reload keeps the old value and names the
    /// setting as needing a restart.
    case restart
}

extension SettingDefinition {
    /// The setting name closest to a mistyped `key` (`head_timeout` → `head-timeout`), or nil if none is close.
    public static func suggestion(for key: String) -> String? {
        let typed = Array(String(key.lowercased().map { $0 == "_" ? "-" : $0 }).utf8)
        var best: (name: String, distance: Int)?
        for d in all {
            let distance = editDistance(typed, Array(d.name.utf8))
            if distance < (best?.distance ?? Int.max) { best = (d.name, distance) }
        }
        guard let best, best.distance <= max(2, typed.count / 4) else { return nil }
        return best.name
    }

    /// Levenshtein distance between two byte strings (keys are short ASCII).
    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}
