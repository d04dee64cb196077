import TollgateIO

/// A parsed `authorized-keys` file: the `ollama` CLI keys allowed in (the CLI keeps its key in
/// `~/.ollama/id_ed25519`, the line to copy in `~/.ollama/id_ed25519.pub`) and the user each logs in as.
///
/// Lines are `ssh-ed25519 AAAA… USER`; `#` comments and blank lines are allowed. The third field is the Tollgate
/// user name, not a free comment. A line Tollgate cannot use (another key type, a malformed key, no user, a key
/// named twice for different users) is skipped with a warning naming file and line; every other line works. Only a
/// file that cannot be read at all is an error.
///
/// A value: parse once (on the watcher's thread or at start-up), then share it between threads.
public struct AuthorizedKeys: Sendable {
    /// The path it was read from (as configured), for messages.
    public var path: String
    /// The usable keys, by their 32 raw public key bytes.
    public var keys: [[UInt8]: AuthorizedKey]
    /// One warning per skipped line, in line order; log them through `WarnOnce`.
    public var warnings: [UsersFileWarning]

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
        return warnings.isEmpty ? count : count + ", \(warnings.count) line(s) skipped"
    }

    /// The key entry for a request's raw public key, if the file lists it.
    public func entry(for publicKey: [UInt8]) -> AuthorizedKey? {
        keys[publicKey]
    }

    /// Parses raw file bytes; lines end in LF or CRLF.
    static func parse(bytes: [UInt8], path: String) -> AuthorizedKeys {
        var keys: [[UInt8]: AuthorizedKey] = [:]
        var warnings: [UsersFileWarning] = []
        /// Keys named for two different users: neither line counts (which user was meant is unknowable).
        var contested: Set<[UInt8]> = []
        var lineNumber = 0
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = raw[...]
            while let last = line.last, last == 0x20 || last == 0x09 || last == 0x0D { line = line.dropLast() }
            let content = line.drop { $0 == 0x20 || $0 == 0x09 }
            if content.isEmpty || content.first == UInt8(ascii: "#") { continue }
            func skip(_ message: String) {
                let material = Array(path.utf8) + [0] + Array("authorized-keys".utf8) + [0] + Array(content)
                warnings.append(UsersFileWarning(path: path, line: lineNumber, "\(message); line ignored",
                                                 key: Digest.sha256(material)))
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
        return AuthorizedKeys(path: path, keys: keys, warnings: warnings)
    }
}
