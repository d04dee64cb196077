import Glibc
import TollgateIO

/// A parsed htpasswd-style users file: `user:hash` lines, `#` comments and blank lines.
///
/// A value: parse once, then share it between threads freely. Replace it as a whole on reload.
public struct UsersFile: Sendable {
    /// The path it was read from (as configured), for messages.
    public var path: String
    /// The users by name.
    public var entries: [String: UserEntry]
    /// One message per user with a weak hash format, naming file, line and user; log them at load.
    public var warnings: [String]
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
    /// Throws for an unreadable or oversized file, invalid UTF-8, a malformed line, a duplicate user or an
    /// unknown hash format, naming the file and line.
    public static func load(path: String) throws(UsersFileError) -> UsersFile {
        let bytes = try readFile(path)
        return try parse(bytes: bytes, path: path)
    }

    /// Parses `text` as the contents of `path` (which is only used in messages).
    public static func parse(_ text: String, path: String) throws(UsersFileError) -> UsersFile {
        try parse(bytes: Array(text.utf8), path: path)
    }

    /// Parses raw file bytes; lines end in LF or CRLF.
    static func parse(bytes: [UInt8], path: String) throws(UsersFileError) -> UsersFile {
        var entries: [String: UserEntry] = [:]
        var order: [UserEntry] = []
        var warnings: [String] = []
        var lineNumber = 0
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = raw[...]
            // Trailing blanks and CR are editor noise, never part of a hash (Apache strips them too).
            while let last = line.last, last == 0x20 || last == 0x09 || last == 0x0D { line = line.dropLast() }
            let content = line.drop { $0 == 0x20 || $0 == 0x09 }
            if content.isEmpty || content.first == UInt8(ascii: "#") { continue }
            func fail(_ message: String) -> UsersFileError {
                UsersFileError(path: path, line: lineNumber, message)
            }
            guard String(validating: line, as: UTF8.self) != nil else { throw fail("not valid UTF-8") }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw fail("malformed line: expected user:hash")
            }
            let userBytes = line[line.startIndex..<colon]
            let hashBytes = line[(colon + 1)...]
            let name = String(decoding: userBytes, as: UTF8.self)
            guard !userBytes.isEmpty else { throw fail("malformed line: empty user name") }
            guard !userBytes.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
                throw fail("user name \(name.debugDescription) contains a space or control character")
            }
            guard !hashBytes.isEmpty else { throw fail("empty hash for user \(name.debugDescription)") }
            guard !hashBytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                throw fail("hash for user \(name.debugDescription) contains a control character")
            }
            let hash = String(decoding: hashBytes, as: UTF8.self)
            guard let format = HashFormat(hash: hash) else {
                throw fail("unknown hash format for user \(name.debugDescription) "
                    + "(expected $2y$, $2b$, $2a$, $5$, $6$, $y$, $apr1$, {SHA}, {SSHA} or {PLAIN})")
            }
            if let first = entries[name] {
                throw fail("duplicate user \(name.debugDescription) (first on line \(first.line))")
            }
            let entry = UserEntry(name: name, hash: hash, format: format, line: lineNumber)
            entries[name] = entry
            order.append(entry)
            if let weakness = format.weakness {
                warnings.append("\(path):\(lineNumber): user \(name.debugDescription) uses \(weakness); "
                    + "rehash with htpasswd -B")
            }
        }
        let dummy = DummyHash.make(typicalOf: order)
        var file = UsersFile(path: path, entries: entries, warnings: warnings, dummyHash: dummy.hash,
                             dummyFormat: dummy.format)
        (file.standIns, file.standInOfEntry) = DummyHash.standIns(for: order)
        var material = Array("tollgate stand-in\n".utf8)
        for entry in order { material += entry.hash.utf8 + [0x0A] }
        file.standInKey = Digest.sha256(material)
        return file
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

    private init(path: String, entries: [String: UserEntry], warnings: [String], dummyHash: String,
                 dummyFormat: HashFormat) {
        self.path = path
        self.entries = entries
        self.warnings = warnings
        self.dummyHash = dummyHash
        self.dummyFormat = dummyFormat
    }

    /// The whole file, or an error naming it. Blocking.
    static func readFile(_ path: String) throws(UsersFileError) -> [UInt8] {
        switch Syscall.readWholeFile(path, limit: maxFileBytes) {
        case .success(let bytes): return bytes
        case .failure(let error): throw UsersFileError(path: path, error.description)
        }
    }
}
