import TollgateIO

/// One setting's resolved value while a `ServerConfig` is built, with the checks the table's kinds cannot make
/// (addresses, URLs, CIDRs, paths); each problem found names the setting and where its value came from.
struct SettingReader {
    /// The setting being read.
    let name: String
    /// Every setting's value and origin.
    let resolved: ResolvedConfig
    /// Online cores: what "one per core" defaults become.
    let cores: Int
    /// Looks up upstream host names.
    let resolve: HostResolver
    /// What was wrong with the value, in the order found.
    private(set) var problems: [ConfigProblem] = []

    init(_ name: String, resolved: ResolvedConfig, cores: Int, resolve: @escaping HostResolver = SocketAddress.resolve) {
        self.name = name
        self.resolved = resolved
        self.cores = cores
        self.resolve = resolve
    }

    /// Records a problem with the value (item `item` of a list, located on its own line when read from a file).
    mutating func problem(_ message: String, item: Int? = nil) {
        problems.append(ConfigProblem(setting: name, item: item, in: resolved, message))
    }

    /// `value`, which a setting with a default always has.
    func required<T>(_ value: T?) -> T {
        guard let value else { preconditionFailure("\(name) has no default: its field must be optional") }
        return value
    }

    /// An `.int` setting with no default that means "one per core" when unset.
    func intOrCores() -> Int { resolved.int(name) ?? cores }

    /// A `.double` setting in seconds, as whole milliseconds (rounded).
    func millis() -> UInt64 { UInt64((required(resolved.double(name)) * 1000).rounded()) }

    /// A `.choice` setting as the enum whose raw values are its words.
    func choice<E: RawRepresentable>(_ type: E.Type = E.self) -> E where E.RawValue == String {
        let word = required(resolved.string(name))
        guard let value = E(rawValue: word) else { preconditionFailure("\(name): \(word) is not a \(E.self)") }
        return value
    }

    /// A `.list` setting of listen addresses.
    mutating func addresses() -> [SocketAddress] {
        resolved.list(name).compactMap { text in
            guard let a = SocketAddress(parsing: text) else {
                problem("\(text.debugDescription) is not HOST:PORT or [IPV6]:PORT with a numeric address")
                return nil
            }
            return a
        }
    }

    /// A `.list` setting of addresses and CIDR blocks.
    mutating func cidrs() -> [CIDR] {
        resolved.list(name).compactMap { text in
            guard let c = CIDR(parsing: text) else {
                problem("\(text.debugDescription) is not an address or CIDR like 10.0.0.0/8")
                return nil
            }
            return c
        }
    }

    /// A `.list` setting of URL paths, each starting with `/`.
    mutating func paths() -> Set<String> {
        let items = resolved.list(name)
        for p in items where !p.hasPrefix("/") { problem("\(p.debugDescription) must start with /") }
        return Set(items)
    }

    /// A `.string` path setting: nil when `off` or empty, else it must start with `/`.
    mutating func pathOrOff() -> String? {
        guard let p = resolved.string(name), p != "off", !p.isEmpty else { return nil }
        if !p.hasPrefix("/") { problem("\(p.debugDescription) must start with / (or be off)") }
        return p
    }

    /// A `.string` setting whose `off` (or empty) value means none.
    func textOrOff() -> String? {
        guard let text = resolved.string(name), text != "off", !text.isEmpty else { return nil }
        return text
    }

    /// A `.string` listen address, or none for `off` (or empty).
    mutating func addressOrOff() -> [SocketAddress] {
        guard let text = textOrOff() else { return [] }
        guard let a = SocketAddress(parsing: text) else {
            problem("\(text.debugDescription) is not HOST:PORT (or off)")
            return []
        }
        return [a]
    }

    /// The `upstream` list: at least one, at most 64, each `URL[ max=N]` once.
    mutating func backends() -> [BackendSpec] {
        var backends: [BackendSpec] = []
        let items = resolved.list(name)
        for (i, text) in items.enumerated() {
            switch BackendSpec.parse(text, resolve: resolve) {
            case .success(let spec):
                if backends.contains(where: { $0.address == spec.address }) {
                    problem("\(spec.address.hostHeader) is listed twice", item: i)
                } else {
                    backends.append(spec)
                }
            case .failure(let e):
                problem(e.message, item: i)
            }
        }
        if items.isEmpty { problem("no upstream: give at least one http://HOST:PORT") }
        if backends.count > 64 { problem("\(backends.count) backends; at most 64 are supported") }
        return backends
    }

    /// The `redis` URL, or nil when unset or empty.
    mutating func redis() -> RedisConfiguration? {
        guard let text = resolved.string(name), !text.isEmpty else { return nil }
        guard let redis = RedisConfiguration(url: text) else {
            problem("\(ResolvedConfig.redactedRedis(text).debugDescription) is not "
                    + "redis://[[user]:password@]host[:port][/db] (port 1...65535, db a number)")
            return nil
        }
        return redis
    }
}

extension ConfigProblem {
    /// A problem with setting `name` (or item `item` of it), located where its value came from; a default's
    /// problem is reported against the flag.
    init(setting name: String, item: Int? = nil, in resolved: ResolvedConfig, _ message: String) {
        let location: Location
        switch item.map({ resolved.origin(name, item: $0) }) ?? resolved.origin(name) {
        case .flag: location = .flag(name)
        case .environment(let variable): location = .environment(variable)
        case .file(let path, let line): location = .file(path: path, line: line)
        case .default: location = .flag(name)
        }
        self.init(location, key: name, message)
    }
}

extension SettingReader {
    /// A `.string` retention like `90d`: seconds, or nil for `0` and `forever` (keep everything).
    mutating func retention() -> Int64? {
        let text = required(resolved.string(name))
        if text == "0" || text == "forever" { return nil }
        guard let seconds = DurationText.seconds(text) else {
            problem("\(text.debugDescription) is not a duration like 90d, 12w, 36h (or 0 / forever)")
            return nil
        }
        return seconds
    }
}
