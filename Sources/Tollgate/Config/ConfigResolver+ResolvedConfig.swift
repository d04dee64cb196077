/// Every setting's effective value and where it came from; the result of `ConfigResolver.resolve`.
///
/// Accessors take names from `SettingDefinition.all` and trap on an unknown name or the wrong kind: both are
/// programming errors, caught by any test that builds a config.
public struct ResolvedConfig: Sendable, Equatable {
    /// Values by setting name; a setting with no default that nobody set has none.
    public var values: [String: SettingValue]
    /// The source of every setting in the table (`.default` also for unset ones).
    public var origins: [String: SettingOrigin]
    /// For list settings read from the config file: the line of each item, in order.
    public var itemLines: [String: [Int]] = [:]
    /// The config file that was read, if any.
    public var configPath: String?
    /// Things worth telling the admin that are not errors (an unknown `TOLLGATE_*` variable).
    public var warnings: [String]

    /// A `.string` or `.choice` setting; nil when unset with no default.
    public func string(_ name: String) -> String? {
        check(name) { if case .string = $0 { return true }; if case .choice = $0 { return true }; return false }
        guard case .string(let s)? = values[name] else { return nil }
        return s
    }

    /// An `.int` setting; nil when unset with no default.
    public func int(_ name: String) -> Int? {
        check(name) { if case .int = $0 { return true }; return false }
        guard case .int(let n)? = values[name] else { return nil }
        return n
    }

    /// A `.double` setting; nil when unset with no default.
    public func double(_ name: String) -> Double? {
        check(name) { if case .double = $0 { return true }; return false }
        guard case .double(let d)? = values[name] else { return nil }
        return d
    }

    /// A `.bool` setting; false when unset with no default.
    public func bool(_ name: String) -> Bool {
        check(name) { $0 == .bool }
        guard case .bool(let b)? = values[name] else { return false }
        return b
    }

    /// A `.list` or `.lines` setting; empty when unset with no default.
    public func list(_ name: String) -> [String] {
        check(name) { $0.isList }
        guard case .list(let items)? = values[name] else { return [] }
        return items
    }

    /// Where `name`'s value came from.
    public func origin(_ name: String) -> SettingOrigin {
        origins[name] ?? .default
    }

    /// Where item `item` of list setting `name` came from: its own line when it was read from the config file.
    public func origin(_ name: String, item: Int) -> SettingOrigin {
        if case .file(let path, _) = origin(name), let lines = itemLines[name], lines.indices.contains(item) {
            return .file(path: path, line: lines[item])
        }
        return origin(name)
    }

    /// Traps unless `name` is a setting whose kind satisfies `accepts`.
    private func check(_ name: String, _ accepts: (SettingKind) -> Bool) {
        let definition = SettingDefinition.required(name)
        guard accepts(definition.kind) else {
            preconditionFailure("\(name) is a \(definition.kind.summary) setting: wrong accessor")
        }
    }
}
