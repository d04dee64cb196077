import Glibc
import TollgateIO

/// What the ACME client keeps in `state-dir`/acme (folder 0700, files 0600): the account key, the issued chain and
/// its key, the names it was issued for, and the self-signed certificate served until the first issuance. Nothing
/// is lost on restart, so a valid certificate is never issued again (CA rate limits). Blocking file I/O: start-up
/// and the ACME thread only.
public struct ACMEStore: Sendable {
    /// The folder.
    public let directory: String

    /// The store in `directory` (nothing is created until `prepare`).
    public init(directory: String) {
        self.directory = directory
    }

    /// The store's folder inside a state directory.
    public static func directory(inStateDirectory state: String) -> String {
        (state.hasSuffix("/") ? state : state + "/") + "acme"
    }

    /// The account's P-256 key (PEM).
    public var accountKeyPath: String { directory + "/account-key.pem" }
    /// The issued chain, leaf first (PEM).
    public var chainPath: String { directory + "/chain.pem" }
    /// The issued certificate's private key (PEM).
    public var keyPath: String { directory + "/key.pem" }
    /// The names `chainPath` was issued for, one a line.
    public var domainsPath: String { directory + "/domains" }
    /// The self-signed certificate served until the first issuance, and its key.
    public var selfSignedPath: String { directory + "/self-signed.pem" }
    public var selfSignedKeyPath: String { directory + "/self-signed-key.pem" }

    /// Creates the folder (and a missing state directory above it) mode 0700, and narrows an existing one to 0700.
    public func prepare() throws(SocketError) {
        if let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            let parent = String(directory[..<slash])
            if mkdir(parent, 0o700) != 0 && errno != EEXIST {
                throw SocketError("cannot create \(parent): \(Syscall.describe(errno))")
            }
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw SocketError("cannot create \(directory): \(Syscall.describe(errno))")
        }
        // A link (or anything but a directory of this user) planted there is refused, never followed: the keys
        // would be written wherever it points, and that place narrowed to 0700.
        var info = stat()
        guard lstat(directory, &info) == 0 else {
            throw SocketError("cannot read \(directory): \(Syscall.describe(errno))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid() else {
            throw SocketError("\(directory) is not a directory of this user (a link, or another owner's): remove it, "
                              + "and the certificate store is made again")
        }
        if chmod(directory, 0o700) != 0 {
            throw SocketError("cannot make \(directory) private (chmod 0700): \(Syscall.describe(errno))")
        }
    }

    /// The account key, created (and saved) on first use.
    public func accountKey() throws(SocketError) -> AccountKey {
        if access(accountKeyPath, F_OK) == 0 {
            let bytes = try read(accountKeyPath)
            guard let key = P256Key(pem: bytes) else {
                throw SocketError("\(accountKeyPath) is not a P-256 private key in PEM (remove it to register a new "
                                  + "ACME account)")
            }
            return AccountKey(key)
        }
        let key = P256Key()
        try write(accountKeyPath, key.pem)
        return AccountKey(key)
    }

    /// The issued certificate as stored, when there is a readable pair; nil when none was issued yet.
    public func issued() throws(SocketError) -> StoredCertificate? {
        guard access(chainPath, F_OK) == 0 || access(keyPath, F_OK) == 0 else { return nil }
        let certificate = try TLSCertificate(certificatePath: chainPath, keyPath: keyPath)
        guard certificate.notAfter > 0, certificate.notBefore > 0 else {
            throw SocketError("\(chainPath) holds no readable certificate")
        }
        // A chain beside another key (a save cut between its two renames) cannot be served: it counts as none, so
        // serve starts on another certificate and a new one is ordered at once.
        do throws(SocketError) {
            _ = try TLSContext(certificate: certificate, library: TLSLibrary())
        } catch {
            throw SocketError("\(chainPath) and \(keyPath) cannot be served together (\(error.description))")
        }
        let domains = (try? read(domainsPath)).map { bytes in
            String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        } ?? []
        return StoredCertificate(certificate: certificate, domains: domains)
    }

    /// Saves a newly issued pair and the names it covers: each file written beside its final name and renamed over
    /// it, the key first, so that a reader never pairs a new chain with an old key for longer than two renames.
    public func save(_ issued: IssuedCertificate, domains: [String]) throws(SocketError) {
        try write(keyPath, issued.key)
        try write(chainPath, issued.chain)
        try write(domainsPath, Array(domains.joined(separator: "\n").utf8) + [10])
    }

    /// Makes sure the self-signed certificate for `domains` exists and has more than a day left: created (or
    /// replaced) when not. Returns whether it was created.
    @discardableResult
    public func ensureSelfSigned(domains: [String], now: Int64 = Int64(time(nil))) throws(SocketError) -> Bool {
        if access(selfSignedPath, R_OK) == 0 && access(selfSignedKeyPath, R_OK) == 0,
           let existing = try? TLSCertificate(certificatePath: selfSignedPath, keyPath: selfSignedKeyPath),
           existing.notAfter - now > 86_400 {
            return false
        }
        unlink(selfSignedPath)
        unlink(selfSignedKeyPath)
        try DevelopmentCertificate.generate(keyPath: selfSignedKeyPath, certificatePath: selfSignedPath,
                                            commonName: domains.first ?? "localhost",
                                            subjectAltNames: domains.map { "DNS:" + $0 }.joined(separator: ","))
        chmod(selfSignedPath, 0o600)
        return true
    }

    /// The whole file at `path` (keys and chains are small).
    private func read(_ path: String) throws(SocketError) -> [UInt8] {
        switch Syscall.readWholeFile(path, limit: 1 << 20) {
        case .success(let bytes): return bytes
        case .failure(let error): throw SocketError("\(path): \(error.description)")
        }
    }

    /// Writes `bytes` to `path` atomically, mode 0600 (a temporary file renamed over it; a file or link already at
    /// the temporary name is removed, never followed).
    private func write(_ path: String, _ bytes: [UInt8]) throws(SocketError) {
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SocketError("cannot write \(temporary): \(Syscall.describe(errno))") }
        if let error = Syscall.writeAll(fd, bytes) ?? (fsync(fd) == 0 ? nil : errno) {
            close(fd)
            unlink(temporary)
            throw SocketError("cannot write \(temporary): \(Syscall.describe(error))")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw SocketError("cannot rename \(temporary) to \(path): \(Syscall.describe(code))")
        }
    }
}

/// The certificate the store holds, with the names it was issued for.
public struct StoredCertificate: Sendable {
    public var certificate: TLSCertificate
    public var domains: [String]

    /// When renewal is due: a third of the lifetime before expiry (Let's Encrypt's advice: 30 days of 90).
    public var renewalDue: Int64 {
        certificate.notAfter - (certificate.notAfter - certificate.notBefore) / 3
    }

    /// Whether it covers exactly `names` (in any order): otherwise a new certificate is ordered at once.
    public func covers(_ names: [String]) -> Bool { Set(domains) == Set(names) }
}
