import TollgateIO

/// Builds the stand-in hash verified for unknown users, so that "no such user" costs exactly what "wrong
/// password" costs and the two cannot be told apart by timing.
enum DummyHash {
    private static let cryptAlphabet = Array("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// A hash of the most common format and cost among `entries` (ties: the earliest line), keeping that entry's
    /// parameters and salt but with a random hash part, so the same work is done and nothing can ever match.
    /// An empty file gets a bcrypt cost-5 stand-in (htpasswd's default).
    static func make(typicalOf entries: [UserEntry]) -> (hash: String, format: HashFormat) {
        var counts: [String: (count: Int, first: UserEntry)] = [:]
        for entry in entries {
            let key = costKey(entry)
            if let seen = counts[key] {
                counts[key] = (seen.count + 1, seen.first)
            } else {
                counts[key] = (1, entry)
            }
        }
        let typical = counts.values.max { a, b in
            a.count != b.count ? a.count < b.count : a.first.line > b.first.line
        }
        guard let representative = typical?.first else {
            let salt = randomCryptChars(21) + [Array(".Oeu".utf8)[Int(Syscall.randomBytes(1)[0] & 3)]]
            let hash = "$2y$05$" + String(decoding: salt + randomCryptChars(31), as: UTF8.self)
            return (hash, .bcrypt(cost: 5))
        }
        return (randomized(representative), representative.format)
    }

    /// The key entries are grouped by: format plus whatever sets its cost.
    static func costKey(_ entry: UserEntry) -> String {
        let fields = entry.hash.split(separator: "$", omittingEmptySubsequences: false)
        switch entry.format {
        case .bcrypt(let cost):
            return "bcrypt \(cost)"
        case .sha256crypt, .sha512crypt:
            let rounds = fields.count > 2 && fields[2].hasPrefix("rounds=") ? String(fields[2]) : "default"
            return "\(entry.format) \(rounds)"
        case .yescrypt:
            return "yescrypt \(fields.count > 2 ? String(fields[2]) : "")"
        case .apr1, .sha1, .ssha, .plain, .md5crypt, .descrypt, .otherCrypt:
            return "\(entry.format)"
        }
    }

    /// One stand-in per cost present among `entries` (format plus what sets its cost, see `costKey`), each keeping
    /// the first such entry's parameters and salt with a random hash part, and for each entry, in order, the index
    /// of its cost's stand-in. An empty file gets the bcrypt cost-5 stand-in of `make`.
    static func standIns(for entries: [UserEntry]) -> (standIns: [(hash: String, format: HashFormat)], ofEntry: [Int]) {
        guard !entries.isEmpty else { return ([make(typicalOf: [])], []) }
        var index: [String: Int] = [:]
        var standIns: [(hash: String, format: HashFormat)] = []
        var ofEntry: [Int] = []
        ofEntry.reserveCapacity(entries.count)
        for entry in entries {
            let key = costKey(entry)
            if let i = index[key] {
                ofEntry.append(i)
            } else {
                index[key] = standIns.count
                ofEntry.append(standIns.count)
                standIns.append((randomized(entry), entry.format))
            }
        }
        return (standIns, ofEntry)
    }

    /// `entry`'s hash with its hash part (not its parameters or salt) replaced by random characters.
    private static func randomized(_ entry: UserEntry) -> String {
        let bytes = Array(entry.hash.utf8)
        switch entry.format {
        case .bcrypt:
            // $2y$NN$ + 22 salt characters + 31 hash characters.
            return String(decoding: bytes.prefix(29) + randomCryptChars(31), as: UTF8.self)
        case .descrypt:
            // Two salt characters + 11 hash characters.
            return String(decoding: bytes.prefix(2) + randomCryptChars(11), as: UTF8.self)
        case .sha256crypt, .sha512crypt, .yescrypt, .apr1, .md5crypt, .otherCrypt:
            let cut = (bytes.lastIndex(of: UInt8(ascii: "$")) ?? bytes.count - 1) + 1
            let tail = max(1, bytes.count - cut)
            return String(decoding: bytes[..<cut] + randomCryptChars(tail), as: UTF8.self)
        case .sha1:
            return "{SHA}" + Base64.encode(Syscall.randomBytes(20))
        case .ssha:
            let length = Base64.decode(bytes[6...])?.count ?? 28
            return "{SSHA}" + Base64.encode(Syscall.randomBytes(length))
        case .plain:
            return "{PLAIN}" + String(decoding: randomCryptChars(24), as: UTF8.self)
        }
    }

    private static func randomCryptChars(_ count: Int) -> [UInt8] {
        Syscall.randomBytes(count).map { cryptAlphabet[Int($0 & 63)] }
    }
}
