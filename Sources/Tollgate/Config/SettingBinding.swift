/// Where one setting's value lives in a `ServerConfig`: how its resolved value is written there, and how a reload
/// compares two configs' values of it and keeps the old one.
///
/// Made from key paths (`.field(\.healthFails)`), so a row of `SettingDefinition.all` names its field once and
/// building, comparing and keeping all follow from it.
struct SettingBinding: Sendable {
    /// Writes the value read through `reader` (which collects problems) into the config.
    let store: @Sendable (inout ServerConfig, inout SettingReader) -> Void
    /// Whether two configs hold different values.
    let differs: @Sendable (ServerConfig, ServerConfig) -> Bool
    /// Copies the value from the second config into the first.
    let keep: @Sendable (inout ServerConfig, ServerConfig) -> Void

    /// The value as `read` makes it goes to every one of `paths` (more than one when two parts of the server read
    /// the same setting).
    static func field<T: Equatable & Sendable>(
        _ paths: any WritableKeyPath<ServerConfig, T> & Sendable...,
        read: @escaping @Sendable (inout SettingReader) -> T
    ) -> SettingBinding {
        SettingBinding(
            store: { config, reader in
                let value = read(&reader)
                for path in paths { config[keyPath: path] = value }
            },
            differs: { a, b in paths.contains { a[keyPath: $0] != b[keyPath: $0] } },
            keep: { config, source in for path in paths { config[keyPath: path] = source[keyPath: path] } }
        )
    }

    /// The value goes to every one of `paths` as it is (an integer, a number, a flag, a string, a list of strings).
    static func field<T: SettingStorable>(_ paths: any WritableKeyPath<ServerConfig, T> & Sendable...) -> SettingBinding {
        SettingBinding(
            store: { config, reader in
                let value = T.read(&reader)
                for path in paths { config[keyPath: path] = value }
            },
            differs: { a, b in paths.contains { a[keyPath: $0] != b[keyPath: $0] } },
            keep: { config, source in for path in paths { config[keyPath: path] = source[keyPath: path] } }
        )
    }
}

/// A field type a setting's value is stored in as it is, with no check beyond the table's kind and range.
protocol SettingStorable: Equatable, Sendable {
    /// The value of `reader`'s setting (traps when the kind does not match: a wrong row, caught by any test).
    static func read(_ reader: inout SettingReader) -> Self
}

extension Int: SettingStorable {
    static func read(_ reader: inout SettingReader) -> Int { reader.required(reader.resolved.int(reader.name)) }
}

extension Double: SettingStorable {
    static func read(_ reader: inout SettingReader) -> Double { reader.required(reader.resolved.double(reader.name)) }
}

extension Bool: SettingStorable {
    static func read(_ reader: inout SettingReader) -> Bool { reader.resolved.bool(reader.name) }
}

extension String: SettingStorable {
    static func read(_ reader: inout SettingReader) -> String { reader.required(reader.resolved.string(reader.name)) }
}

extension Optional: SettingStorable where Wrapped: SettingOptionalStorable {
    static func read(_ reader: inout SettingReader) -> Wrapped? { Wrapped.readOptional(&reader) }
}

/// A field type whose optional holds a setting with no default (nil: not set).
protocol SettingOptionalStorable: Equatable, Sendable {
    /// The value of `reader`'s setting, nil when it is not set.
    static func readOptional(_ reader: inout SettingReader) -> Self?
}

extension Int: SettingOptionalStorable {
    static func readOptional(_ reader: inout SettingReader) -> Int? { reader.resolved.int(reader.name) }
}

extension String: SettingOptionalStorable {
    static func readOptional(_ reader: inout SettingReader) -> String? { reader.resolved.string(reader.name) }
}

extension Array: SettingStorable where Element == String {
    static func read(_ reader: inout SettingReader) -> [String] { reader.resolved.list(reader.name) }
}

extension Set: SettingStorable where Element == String {
    static func read(_ reader: inout SettingReader) -> Set<String> { Set(reader.resolved.list(reader.name)) }
}
