import TollgateIO

/// A parsed `authorized-keys` file: the `ollama` CLI keys allowed in (the CLI keeps its key in
/// `~/.ollama/id_ed25519`, the line to copy in `~/.ollama/id_ed25519.pub`) and the user each logs in as.
///
/// Lines are `ssh-ed25519 AAAA… USER`; `#` comments and blank lines are allowed. The third field is the Tollgate
/// user name, not a free comment. A line Tollgate cannot use (another key type, a malformed key, a small-order key,
/// no user, a key named twice for different users) is skipped with a warning naming file and line; every other line
/// works. A user name with an `@` (the `user@host` comment of a pasted `.pub` line, most likely) counts but is
/// warned about too. Only a file that cannot be read at all is an error; the key's user must also be in the users
/// file to log in (`SignedLogins.check`).
///
/// A value: parse once (on the watcher's thread or at start-up), then share it between threads.
public struct AuthorizedKeys: Sendable {
    /// The path it was read from (as configured), for messages.
    public var path: String
    /// The usable keys, by their 32 raw public key bytes.
    public var keys: [[UInt8]: AuthorizedKey]
    /// One warning per skipped or suspicious line, in line order; log them through `WarnOnce`.
    public var warnings: [UsersFileWarning]
    /// Lines skipped (each has one of `warnings`).
    public var skipped = 0

    /// Reads and parses `path`. Blocking file I/O: at start-up or on the watcher's thread, never on a loop.
    public static func load(path: String) throws(UsersFileError) -> AuthorizedKeys {
        parse(bytes: try UsersFile.readFile(path), path: path)
    }

    /// Parses `text` as the contents of `path` (only used in messages).
    public static func parse(_ text: String, path: String) -> AuthorizedKeys {
        parse(bytes: Array(text.utf8), path: path)
    }

    /// "2 key(s)", or "2 key(s), 1 line skipped": for load and reload messages.
    public var summary: String {
        let count = "\(keys.count) key(s)"
        return skipped == 0 ? count : count + ", \(skipped) line(s) skipped"
    }

    /// The key entry for a request's raw public key, if the file lists it.
    public func entry(for publicKey: [UInt8]) -> AuthorizedKey? {
        keys[publicKey]
    }

    /// Parses raw file bytes; lines end in LF or CRLF.
    static func parse(bytes: [UInt8], path: String) -> AuthorizedKeys {
        var keys: [[UInt8]: AuthorizedKey] = [:]
        var warnings: [UsersFileWarning] = []
        var skipped = 0
        /// Keys named for two different users: neither line counts (which user was meant is unknowable).
        var contested: Set<[UInt8]> = []
        var lineNumber = 0
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = raw[...]
            while let last = line.last, last == 0x20 || last == 0x09 || last == 0x0D { line = line.dropLast() }
            let content = line.drop { $0 == 0x20 || $0 == 0x09 }
            if content.isEmpty || content.first == UInt8(ascii: "#") { continue }
            func warn(_ message: String) {
                let material = Array(path.utf8) + [0] + Array("authorized-keys".utf8) + [0] + Array(content)
                warnings.append(UsersFileWarning(path: path, line: lineNumber, message, key: Digest.sha256(material)))
            }
            func skip(_ message: String) {
                skipped += 1
                warn("\(message); line ignored")
            }
            let fields = content.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
            let type = String(decoding: fields[0], as: UTF8.self)
            guard type == SSHEd25519.typeName else {
                let keyType = type.hasPrefix("ssh-") || type.hasPrefix("ecdsa-") || type.hasPrefix("sk-")
                skip(keyType ? "\(type.debugDescription) key: only ssh-ed25519 keys are accepted (the ollama CLI's kind)"
                             : "malformed line (expected: ssh-ed25519 KEY USER; options before the key are not supported)")
                continue
            }
            guard fields.count >= 2, let blob = Base64.decode(Array(fields[1])),
                  let rawKey = SSHEd25519.rawKey(blob: blob) else {
                skip("the key is not a valid ssh-ed25519 public key")
                continue
            }
            guard !AuthorizedKeys.hasSmallOrder(rawKey) else {
                skip("the key is a small-order point (signatures forged for any request would verify), not a real key")
                continue
            }
            guard fields.count == 3 else {
                skip(fields.count == 2 ? "no user name after the key (expected: ssh-ed25519 KEY USER)"
                                       : "more than one word after the key (expected: ssh-ed25519 KEY USER)")
                continue
            }
            let userBytes = fields[2]
            guard let user = String(validating: userBytes, as: UTF8.self),
                  !userBytes.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ":") }) else {
                skip("the user name is not valid UTF-8 or contains a colon or control character")
                continue
            }
            if user.contains("@") {
                warn("the user name \(user.debugDescription) looks like the comment of a pasted .pub line: the third "
                     + "field is the Tollgate user the key logs in as, and must be in the users file")
            }
            if contested.contains(rawKey) {
                skip("the same key is named for more than one user: neither line counts")
                continue
            }
            if let earlier = keys[rawKey] {
                if earlier.user == user {
                    skip("the same key is also on line \(earlier.line)")
                } else {
                    keys[rawKey] = nil
                    contested.insert(rawKey)
                    skip("the same key is on line \(earlier.line) for user \(earlier.user.debugDescription): "
                         + "neither line counts until one is removed")
                }
                continue
            }
            guard let key = Ed25519PublicKey(raw: rawKey) else {
                skip("OpenSSL refused the key")
                continue
            }
            keys[rawKey] = AuthorizedKey(user: user, key: key, fingerprint: SSHEd25519.fingerprint(blob: blob),
                                         line: lineNumber)
        }
        return AuthorizedKeys(path: path, keys: keys, warnings: warnings, skipped: skipped)
    }

    /// Whether a 32-byte Ed25519 public key encodes one of the eight points of small order (or a non-canonical
    /// form of one): with such a "key" OpenSSL accepts a signature anyone can make (R the identity, S zero) for
    /// any message. Compared as libsodium's `ge25519_has_small_order` does, ignoring the sign bit: the y
    /// coordinates 0, 1, p−1, the two of the order-8 points, and p, p+1 (0 and 1 written non-canonically).
    static func hasSmallOrder(_ raw: [UInt8]) -> Bool {
        guard raw.count == 32 else { return false }
        var masked = raw
        masked[31] &= 0x7F
        return smallOrderY.contains(masked)
    }

    private static let smallOrderY: [[UInt8]] = {
        func hex(_ s: String) -> [UInt8] {
            var out: [UInt8] = []
            var i = s.startIndex
            while i < s.endIndex {
                let j = s.index(i, offsetBy: 2)
                out.append(UInt8(s[i..<j], radix: 16)!)
                i = j
            }
            return out
        }
        let ones = [UInt8](repeating: 0xFF, count: 30)
        return [
            [UInt8](repeating: 0, count: 32),                                         // 0 (order 4)
            [1] + [UInt8](repeating: 0, count: 31),                                   // 1 (order 1)
            hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), // order 8
            hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), // order 8
            [0xEC] + ones + [0x7F],                                                   // p − 1 (order 2)
            [0xED] + ones + [0x7F],                                                   // p = 0 (order 4)
            [0xEE] + ones + [0x7F],                                                   // p + 1 = 1 (order 1)
        ]
    }()
}
