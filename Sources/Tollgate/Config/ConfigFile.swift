import Glibc

/// A parsed Tollgate config file: `key = value` lines, `#` comments, blank lines.
///
/// Keys are the `tollgate serve` long flag names without dashes (`SettingDefinition.all`). A value may be
/// double-quoted (escapes `\"` and `\\`) to hold `#`, commas or outer spaces; `#` starts a comment at the start of a
/// line or after whitespace. Only list settings may repeat, each occurrence appending; list items may also be
/// separated by commas. Lines end in LF or CRLF; a leading UTF-8 BOM is ignored. A value, so share it freely.
public struct ConfigFile: Sendable, Equatable {
    /// One setting read from the file.
    public struct Entry: Sendable, Equatable {
        /// The typed value; for a repeated list key, every occurrence's items in file order.
        public var value: SettingValue
        /// The line that first set it.
        public var line: Int
    }

    /// Read when no `--config` or `TOLLGATE_CONFIG` names a file, and only if it exists.
    public static let defaultPath = "/etc/tollgate/tollgate.conf"
    /// The variable naming a config file (below `--config`, above `defaultPath`); not a setting itself.
    public static let environmentVariable = "TOLLGATE_CONFIG"

    /// The path it was read from (as given), for messages and origins.
    public var path: String
    /// The settings it sets, by key.
    public var entries: [String: Entry]
    /// For list settings: the line of each item, in order (a repeated key spreads its items over several lines).
    public var itemLines: [String: [Int]] = [:]

    /// The file to read: `flag` (the `--config` value), else `$TOLLGATE_CONFIG`, else `defaultPath` if it exists,
    /// else nil (no file: flags, environment and defaults only).
    public static func locate(flag: String?, environment: [String: String]) -> String? {
        if let flag { return flag }
        if let path = environment[environmentVariable], !path.isEmpty { return path }
        return access(defaultPath, F_OK) == 0 ? defaultPath : nil
    }

    /// Reads and parses `path`. Blocking file I/O (start-up, check-config, reload). Throws every problem found,
    /// each naming the file and line, or the file alone when it cannot be read.
    public static func load(path: String) throws(ConfigError) -> ConfigFile {
        let bytes: [UInt8]
        do {
            bytes = try UsersFile.readFile(path)
        } catch {
            throw ConfigError([ConfigProblem(.file(path: path, line: nil), key: nil, error.message)])
        }
        return try parse(bytes: bytes, path: path)
    }

    /// Parses `text` as the contents of `path` (used only in messages and origins).
    public static func parse(text: String, path: String) throws(ConfigError) -> ConfigFile {
        try parse(bytes: Array(text.utf8), path: path)
    }

    /// Parses raw file bytes, collecting a problem per bad line.
    static func parse(bytes: [UInt8], path: String) throws(ConfigError) -> ConfigFile {
        let (file, problems) = parseCollecting(bytes: bytes, path: path)
        guard problems.isEmpty else { throw ConfigError(problems) }
        return file
    }

    /// Reads `path` like `load`, but returns the settings of the good lines together with a problem per bad one
    /// (or the file's problem and no settings when it cannot be read), so that the values can be checked too.
    static func loadCollecting(path: String) -> (file: ConfigFile, problems: [ConfigProblem]) {
        do {
            return parseCollecting(bytes: try UsersFile.readFile(path), path: path)
        } catch {
            return (ConfigFile(path: path, entries: [:]), [ConfigProblem(.file(path: path, line: nil), key: nil, error.message)])
        }
    }

    /// Parses raw file bytes: the settings of the good lines, and a problem per bad line.
    static func parseCollecting(bytes: [UInt8], path: String) -> (file: ConfigFile, problems: [ConfigProblem]) {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        var entries: [String: Entry] = [:]
        var itemLines: [String: [Int]] = [:]
        var firstLine: [String: Int] = [:]
        var problems: [ConfigProblem] = []
        var lineNumber = 0
        for raw in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = raw
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            func problem(_ key: String?, _ message: String) {
                problems.append(ConfigProblem(.file(path: path, line: lineNumber), key: key, message))
            }
            guard String(validating: line, as: UTF8.self) != nil else {
                problem(nil, "not valid UTF-8")
                continue
            }
            guard !line.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
                problem(nil, "contains a control character")
                continue
            }
            let content = line.drop(while: isBlank)
            if content.isEmpty || content.first == UInt8(ascii: "#") { continue }
            guard let equals = content.firstIndex(of: UInt8(ascii: "=")) else {
                let text = String(decoding: trimmed(content), as: UTF8.self)
                // The line may be a mistyped `redis` setting: its password stays out of the message.
                problem(nil, "expected \"key = value\", got \(ResolvedConfig.redactedRedis(text).debugDescription)")
                continue
            }
            let keyBytes = trimmed(content[..<equals])
            guard !keyBytes.isEmpty else {
                problem(nil, "missing key before \"=\"")
                continue
            }
            let key = String(decoding: keyBytes, as: UTF8.self)
            guard let definition = SettingDefinition.named(key) else {
                let hint = SettingDefinition.suggestion(for: key).map { " (did you mean \($0.debugDescription)?)" }
                problem(key, "unknown setting" + (hint ?? ""))
                continue
            }
            if let first = firstLine[key], !definition.kind.isList {
                problem(key, "already set on line \(first) (only list settings may repeat)")
                continue
            }
            if firstLine[key] == nil { firstLine[key] = lineNumber }
            let items: [String]
            switch splitValue(content[(equals + 1)...], allowCommas: definition.kind.splitsAtCommas) {
            case .success(let i): items = i
            case .failure(let e):
                problem(key, e.message)
                continue
            }
            if let previous = entries[key], case .list(let earlier) = previous.value {
                entries[key]?.value = .list(earlier + items)
                itemLines[key, default: []] += Array(repeating: lineNumber, count: items.count)
                continue
            }
            switch definition.kind.parse(items: items) {
            case .success(let value):
                entries[key] = Entry(value: value, line: lineNumber)
                if definition.kind.isList { itemLines[key] = Array(repeating: lineNumber, count: items.count) }
            case .failure(let e): problem(key, e.message)
            }
        }
        return (ConfigFile(path: path, entries: entries, itemLines: itemLines), problems)
    }

    /// The items of the value after `=`: one for a scalar, one or more for a list (`a, "b,c", d`).
    static func splitValue(_ text: ArraySlice<UInt8>, allowCommas: Bool) -> Result<[String], SettingValueError> {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), hash = UInt8(ascii: "#"),
            comma = UInt8(ascii: ",")
        var items: [String] = []
        var i = text.startIndex
        func skipBlanks() { while i < text.endIndex, isBlank(text[i]) { i += 1 } }
        skipBlanks()
        if i == text.endIndex || text[i] == hash { return .failure(SettingValueError("missing value")) }
        while true {
            // At the start of an item, after blanks.
            if i == text.endIndex || text[i] == hash { return .failure(SettingValueError("empty item in list")) }
            if text[i] == quote {
                i += 1
                var item: [UInt8] = []
                var closed = false
                while i < text.endIndex {
                    let c = text[i]
                    if c == backslash {
                        guard i + 1 < text.endIndex else { break }
                        let next = text[i + 1]
                        guard next == quote || next == backslash else {
                            let shown = String(decoding: [next], as: UTF8.self)
                            return .failure(SettingValueError(
                                "unknown escape \\\(shown) in a quoted value (only \\\" and \\\\)"))
                        }
                        item.append(next)
                        i += 2
                    } else if c == quote {
                        closed = true
                        i += 1
                        break
                    } else {
                        item.append(c)
                        i += 1
                    }
                }
                guard closed else { return .failure(SettingValueError("unterminated quoted value")) }
                items.append(String(decoding: item, as: UTF8.self))
                skipBlanks()
                if i == text.endIndex || text[i] == hash { return .success(items) }
                guard allowCommas, text[i] == comma else {
                    return .failure(SettingValueError("unexpected text after the closing quote"))
                }
            } else {
                let start = i
                while i < text.endIndex {
                    let c = text[i]
                    if allowCommas && c == comma { break }
                    if c == hash && isBlank(text[i - 1]) { break }
                    if c == quote {
                        return .failure(SettingValueError("a quote inside an unquoted value (quote the whole value)"))
                    }
                    i += 1
                }
                let item = trimmed(text[start..<i])
                if item.isEmpty { return .failure(SettingValueError("empty item in list")) }
                items.append(String(decoding: item, as: UTF8.self))
                if i == text.endIndex || text[i] == hash { return .success(items) }
            }
            i += 1  // past the comma
            skipBlanks()
        }
    }

    /// Comma-separated items with outer blanks trimmed (environment variables and list defaults); empty items kept.
    static func splitList(_ text: String) -> [String] {
        Array(text.utf8).split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map {
            String(decoding: trimmed($0), as: UTF8.self)
        }
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var b = bytes
        while let first = b.first, isBlank(first) { b = b.dropFirst() }
        while let last = b.last, isBlank(last) { b = b.dropLast() }
        return b
    }
}
