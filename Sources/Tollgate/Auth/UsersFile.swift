import Glibc
import TollgateIO

/// A parsed htpasswd-style users file: `user:hash` lines, `#` comments and blank lines.
///
/// A line Tollgate cannot use (a hash it cannot verify, a malformed line, a user on two lines) disables only that
/// user, with a warning naming file and line; every other user works. Only a file that cannot be read at all is an
/// error.
///
/// A value: parse once, then share it between threads freely. Replace it as a whole on reload.
public struct UsersFile: Sendable {
    /// The path it was read from (as configured), for messages.
    public var path: String
    /// The users who can log in, by name.
    public var entries: [String: UserEntry]
    /// One warning per weak hash (naming file, line and user) and per unusable line, in line order; log them through
    /// `WarnOnce` so a reload does not repeat them.
    public var warnings: [UsersFileWarning]
    /// The lines that name no usable user, in line order; their users (if any) cannot log in.
    public var disabled: [DisabledLine]
    /// The stand-in hash of the file's most common format and cost, with a random hash part so it can never match.
    /// Unknown users are checked against `standIn(for:)`, which picks among one stand-in per cost in the file.
    public private(set) var dummyHash: String
    /// `dummyHash`'s format.
    public private(set) var dummyFormat: HashFormat
    /// One stand-in hash per cost present in the file (format plus rounds or cost), and per entry in file order the
    /// index of its cost's stand-in: see `standIn(for:)`.
    private var standIns: [(hash: String, format: HashFormat)] = []
    private var standInOfEntry: [Int] = []
    /// The key that maps an unknown name to an entry: a digest of every stored hash, unknown outside the server.
    private var standInKey: [UInt8] = []

    /// Files larger than this are refused: a users file is a few kilobytes.
    public static let maxFileBytes = 16 << 20

    /// Reads and parses `path`. Blocking file I/O: call at start-up or from the watcher's thread, not on a loop.
    /// Throws only for a file that cannot be used at all (unreadable, not a regular file, oversized).
    public static func load(path: String) throws(UsersFileError) -> UsersFile {
        let bytes = try readFile(path)
        return parse(bytes: bytes, path: path)
    }

    /// Parses `text` as the contents of `path` (which is only used in messages).
    public static func parse(_ text: String, path: String) -> UsersFile {
        parse(bytes: Array(text.utf8), path: path)
    }

    /// One line that names a user, before duplicates are sorted out: its hash and format, or why it is unusable.
    private struct Candidate {
        var name: String
        var line: Int
        var content: ArraySlice<UInt8>
        var usable: Result<(hash: String, format: HashFormat), Unusable>
    }

    private struct Unusable: Error {
        /// Why, in a few words (`tollgate users list` shows it).
        var reason: String
        /// What the warning adds.
        var hint = ""
    }

    /// Parses raw file bytes; lines end in LF or CRLF.
    static func parse(bytes: [UInt8], path: String) -> UsersFile {
        var candidates: [Candidate] = []
        var warnings: [UsersFileWarning] = []
        var disabled: [DisabledLine] = []
        var lineNumber = 0
        func warning(_ message: String, kind: String, line: Int, content: ArraySlice<UInt8>,
                     also: ArraySlice<UInt8> = []) -> UsersFileWarning {
            let material = Array(path.utf8) + [0] + Array(kind.utf8) + [0] + Array(content) + [0] + Array(also)
            return UsersFileWarning(path: path, line: line, message, key: Digest.sha256(material))
        }
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = raw[...]
            // Trailing blanks and CR are editor noise, never part of a hash (Apache strips them too).
            while let last = line.last, last == 0x20 || last == 0x09 || last == 0x0D { line = line.dropLast() }
            let content = line.drop { $0 == 0x20 || $0 == 0x09 }
            if content.isEmpty || content.first == UInt8(ascii: "#") { continue }
            func skip(_ reason: String) {
                disabled.append(DisabledLine(line: lineNumber, user: nil, reason: reason))
                warnings.append(warning("\(reason); line ignored", kind: "skipped", line: lineNumber, content: line))
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                skip("malformed line (expected user:hash)")
                continue
            }
            let userBytes = line[line.startIndex..<colon]
            let hashBytes = line[(colon + 1)...]
            guard !userBytes.isEmpty else {
                skip("malformed line: empty user name")
                continue
            }
            guard let name = String(validating: userBytes, as: UTF8.self) else {
                skip("user name is not valid UTF-8")
                continue
            }
            guard !userBytes.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
                skip("user name \(name.debugDescription) contains a space or control character")
                continue
            }
            let usable: Result<(hash: String, format: HashFormat), Unusable>
            if hashBytes.isEmpty {
                usable = .failure(Unusable(reason: "empty hash"))
            } else if hashBytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                usable = .failure(Unusable(reason: "the hash contains a control character"))
            } else if let hash = String(validating: hashBytes, as: UTF8.self) {
                if let format = HashFormat(hash: hash) {
                    usable = .success((hash, format))
                } else {
                    usable = .failure(Unusable(reason: "unknown hash format", hint: " (expected \(HashFormat.expected))"))
                }
            } else {
                usable = .failure(Unusable(reason: "the hash is not valid UTF-8"))
            }
            candidates.append(Candidate(name: name, line: lineNumber, content: line, usable: usable))
        }

        // A user on two lines is ambiguous (htpasswd reads the first, an admin may have meant the last): neither
        // line counts until one is removed.
        var firstLine: [String: Candidate] = [:]
        var duplicated: Set<String> = []
        for candidate in candidates {
            if firstLine[candidate.name] == nil { firstLine[candidate.name] = candidate } else { duplicated.insert(candidate.name) }
        }
        var entries: [String: UserEntry] = [:]
        var order: [UserEntry] = []
        for candidate in candidates {
            let name = candidate.name
            let quoted = name.debugDescription
            if duplicated.contains(name) {
                let first = firstLine[name]!
                if first.line == candidate.line {
                    disabled.append(DisabledLine(line: candidate.line, user: name, reason: "user on more than one line"))
                } else {
                    disabled.append(DisabledLine(line: candidate.line, user: name, reason: "duplicate of line \(first.line)"))
                    warnings.append(warning("user \(quoted) is also on line \(first.line): neither line counts and "
                                                + "\(quoted) cannot log in until one is removed",
                                            kind: "duplicate", line: candidate.line, content: candidate.content,
                                            also: first.content))
                }
                continue
            }
            switch candidate.usable {
            case .failure(let unusable):
                disabled.append(DisabledLine(line: candidate.line, user: name, reason: unusable.reason))
                warnings.append(warning("user \(quoted) cannot log in: \(unusable.reason)\(unusable.hint)", kind: "disabled",
                                        line: candidate.line, content: candidate.content))
            case .success(let (hash, format)):
                let entry = UserEntry(name: name, hash: hash, format: format, line: candidate.line)
                entries[name] = entry
                order.append(entry)
                if let weakness = format.weakness {
                    warnings.append(warning("user \(quoted) uses \(weakness); rehash with htpasswd -B", kind: "weak",
                                            line: candidate.line, content: candidate.content))
                }
            }
        }
        warnings.sort { $0.line < $1.line }
        disabled.sort { $0.line < $1.line }

        let dummy = DummyHash.make(typicalOf: order)
        var file = UsersFile(path: path, entries: entries, warnings: warnings, disabled: disabled,
                             dummyHash: dummy.hash, dummyFormat: dummy.format)
        (file.standIns, file.standInOfEntry) = DummyHash.standIns(for: order)
        var material = Array("tollgate stand-in\n".utf8)
        for entry in order { material += entry.hash.utf8 + [0x0A] }
        file.standInKey = Digest.sha256(material)
        return file
    }

    /// "3 user(s)", or "3 user(s), 1 line disabled (tollgate users list shows which)": for load and reload messages.
    public var summary: String {
        let users = "\(entries.count) user(s)"
        if disabled.isEmpty { return users }
        return users + ", \(disabled.count) line(s) disabled (tollgate users list shows which)"
    }

    /// The hash an unknown `user` is checked against, so that an unknown name costs what a known one costs.
    ///
    /// The name picks an entry of the file, pseudo-randomly and always the same one (HMAC-SHA-256 keyed with a
    /// digest of the file's stored hashes), and gets the stand-in for that entry's cost: unknown names take the
    /// file's costs in the proportions its users have them, and one name's timing never varies, so neither one
    /// measurement nor many tell an unknown name from a user with that cost. Running the most expensive cost for
    /// every unknown name would instead set apart every user with a cheaper one; a per-process key would re-draw
    /// each unknown name's cost at every restart while a real user's stays, telling them apart across restarts.
    /// The key changes only when the file does.
    public func standIn(for user: String) -> (hash: String, format: HashFormat) {
        if standIns.count <= 1 || standInOfEntry.isEmpty { return standIns.first ?? (dummyHash, dummyFormat) }
        let mac = Digest.hmacSHA256(key: standInKey, Array(user.utf8))
        var value: UInt64 = 0
        for byte in mac.prefix(8) { value = value << 8 | UInt64(byte) }
        return standIns[standInOfEntry[Int(value % UInt64(standInOfEntry.count))]]
    }

    private init(path: String, entries: [String: UserEntry], warnings: [UsersFileWarning], disabled: [DisabledLine],
                 dummyHash: String, dummyFormat: HashFormat) {
        self.path = path
        self.entries = entries
        self.warnings = warnings
        self.disabled = disabled
        self.dummyHash = dummyHash
        self.dummyFormat = dummyFormat
    }

    /// The whole file, or an error naming it. Blocking.
    static func readFile(_ path: String) throws(UsersFileError) -> [UInt8] {
        switch Syscall.readWholeFile(path, limit: maxFileBytes) {
        case .success(let bytes): return bytes
        case .failure(let error):
            var failure = UsersFileError(path: path, error.description)
            var info = stat()
            failure.missing = stat(path, &info) != 0 && errno == ENOENT
            throw failure
        }
    }
}
