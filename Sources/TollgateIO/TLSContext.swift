import COpenSSL
import CTollgate
import Glibc
import Synchronization

/// One worker's OpenSSL library context (`OSSL_LIB_CTX`), with what its handshakes use fetched once.
///
/// OpenSSL 3 looks algorithms up by name in the library context on every use, behind read-write locks and shared
/// caches; threads sharing one context keep moving those cache lines between cores. A context per worker shares
/// nothing, as nginx's worker processes share nothing. Thread-safe; outlives every `TLSContext` made in it.
///
/// A context is never freed: one no longer used is kept for the next `TLSLibrary`. OpenSSL 3.0 keeps per-thread
/// state (its random generators) in a context for every thread that used it, and freeing the context from another
/// thread leaves those threads pointing into freed memory: the process crashed in `OPENSSL_cleanup` at exit. A
/// server makes its contexts once, at start; tests that start many servers reuse the same few.
public final class TLSLibrary: @unchecked Sendable {
    let pointer: OpaquePointer

    /// Contexts whose `TLSLibrary` ended, ready for reuse (each with no `SSL_CTX` left in it).
    private static let spare = Mutex<[Spare]>([])
    /// A context handed from one thread to another (OpenSSL's contexts are thread-safe).
    private struct Spare: @unchecked Sendable { let pointer: OpaquePointer }

    public init() throws(SocketError) {
        if let reused = Self.spare.withLock({ $0.popLast() }) {
            pointer = reused.pointer
            return
        }
        guard let pointer = tg_tls_library_new() else {
            throw SocketError("cannot create an OpenSSL library context: \(TLSContext.takeErrors())")
        }
        self.pointer = pointer
    }

    deinit {
        let spare = Spare(pointer: pointer)
        Self.spare.withLock { $0.append(spare) }
    }
}

/// A certificate chain and its private key as read from their files, once: every worker's context is built from
/// the same bytes, so a renewal that lands between two reads cannot give workers different certificates.
public struct TLSCertificate: Sendable {
    public let certificatePath: String
    public let keyPath: String
    /// The certificate's expiry, seconds since the epoch (for metrics and logs).
    public let notAfter: Int64
    /// The start of the certificate's validity, seconds since the epoch (ACME renews at a third of the lifetime left).
    public let notBefore: Int64
    let certificatePEM: [UInt8]
    let keyPEM: [UInt8]

    /// PEM files are small; anything larger is not one.
    static let maxFileBytes = 1 << 20

    /// Reads both files; fails with a message naming the file and the problem (what is inside is checked when
    /// the first context is built from them).
    public init(certificatePath: String, keyPath: String) throws(SocketError) {
        var contents: [[UInt8]] = []
        for (what, path) in [("certificate", certificatePath), ("private key", keyPath)] {
            if access(path, F_OK) != 0 { throw SocketError("\(what) \(path) does not exist") }
            if access(path, R_OK) != 0 { throw SocketError("\(what) \(path) is not readable: \(Syscall.describe(errno))") }
            switch Syscall.readWholeFile(path, limit: Self.maxFileBytes) {
            case .success(let bytes): contents.append(bytes)
            case .failure(let error): throw SocketError("\(what) \(path): \(error.description)")
            }
        }
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        certificatePEM = contents[0]
        keyPEM = contents[1]
        notAfter = certificatePEM.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { Int64(tg_certificate_not_after_pem($0.baseAddress, $0.count)) }
        }
        notBefore = certificatePEM.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { Int64(tg_certificate_not_before_pem($0.baseAddress, $0.count)) }
        }
    }

    /// A pair held in memory (a certificate just issued, not yet stored); `certificatePath` and `keyPath` name it
    /// in messages.
    public init(certificatePEM: [UInt8], keyPEM: [UInt8], certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.certificatePEM = certificatePEM
        self.keyPEM = keyPEM
        notAfter = certificatePEM.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { Int64(tg_certificate_not_after_pem($0.baseAddress, $0.count)) }
        }
        notBefore = certificatePEM.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { Int64(tg_certificate_not_before_pem($0.baseAddress, $0.count)) }
        }
    }

    /// Whether the leaf is valid for the DNS name `host`.
    public func covers(host: String) -> Bool {
        certificatePEM.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { tg_certificate_covers_host_pem($0.baseAddress, $0.count, host) == 1 }
        }
    }

    /// The leaf's Authority Key Identifier (keyIdentifier) and serial number (DER content octets): the parts of its
    /// ACME Renewal Information identifier (RFC 9773). nil without an AKI keyIdentifier.
    public var renewalInfoParts: (keyIdentifier: [UInt8], serial: [UInt8])? {
        var aki = [UInt8](repeating: 0, count: 64)
        var serial = [UInt8](repeating: 0, count: 64)
        var akiLength = 0
        var serialLength = 0
        let ok = certificatePEM.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) {
                tg_certificate_ari_parts($0.baseAddress, $0.count, &aki, aki.count, &akiLength, &serial, serial.count,
                                         &serialLength)
            }
        }
        guard ok == 1 else { return nil }
        return (Array(aki.prefix(akiLength)), Array(serial.prefix(serialLength)))
    }

    /// Whether `other` was read from files with the same certificate chain and key.
    public func isSame(as other: TLSCertificate) -> Bool {
        certificatePEM == other.certificatePEM && keyPEM == other.keyPEM
    }
}

/// A server TLS configuration (one `SSL_CTX`), Mozilla "intermediate" by default.
///
/// Thread-safe once built: OpenSSL allows one `SSL_CTX` to create sessions from many threads, though each worker
/// builds its own in its own `TLSLibrary`. Owns the `SSL_CTX` and frees it in `deinit` (sessions keep their context
/// alive); a reload builds new contexts and swaps them in for new connections only. Sessions resume from one cache
/// the whole process shares (`TLSSessionCache`), so a client resumes on any worker, and across a reload that keeps
/// the certificate.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    /// The library context the SSL_CTX lives in (freed only after it); a reload builds the next context in it.
    public let library: TLSLibrary
    /// The certificate's expiry, seconds since the epoch (for metrics and logs).
    public let notAfter: Int64
    public let certificatePath: String

    /// TLS 1.2 ciphers of Mozilla's intermediate profile (its server-side TLS guidelines).
    public static let intermediateCiphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    public static let intermediateSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    public static let intermediateGroups = "X25519:P-256:P-384"

    /// Loads a PEM certificate chain and private key into a library context of its own; fails with a message
    /// naming the file and the problem.
    public convenience init(certificatePath: String, keyPath: String) throws(SocketError) {
        try self.init(certificate: TLSCertificate(certificatePath: certificatePath, keyPath: keyPath),
                      library: TLSLibrary())
    }

    /// Builds a context for `certificate` in `library`; fails with a message naming the file and the problem.
    /// `answersACMEChallenges` installs the client-hello callback that answers TLS-ALPN-01 validations
    /// (`TLSALPNChallenges`): only with ACME on, so that without it a handshake runs no callback at all.
    public init(certificate: TLSCertificate, library: TLSLibrary, answersACMEChallenges: Bool = false) throws(SocketError) {
        let certificatePath = certificate.certificatePath
        let keyPath = certificate.keyPath
        guard let ctx = tg_SSL_CTX_new_server(library.pointer) else {
            throw SocketError("SSL_CTX_new failed: \(TLSContext.takeErrors())")
        }
        self.ctx = ctx
        self.library = library
        self.certificatePath = certificatePath
        _ = tg_SSL_CTX_set_min_proto_version(ctx, TG_TLS1_2_VERSION)
        // As nginx's ngx_ssl_create: no renegotiation or compression, an unexpected EOF is an end of stream, and the
        // chain is sent as loaded instead of being built from the store on every handshake.
        _ = tg_SSL_CTX_set_options(ctx, TG_SSL_OP_NO_RENEGOTIATION | TG_SSL_OP_NO_COMPRESSION | TG_SSL_OP_NO_TLSv1
            | TG_SSL_OP_NO_TLSv1_1 | TG_SSL_OP_IGNORE_UNEXPECTED_EOF)
        _ = tg_SSL_CTX_set_mode(ctx, TG_SSL_MODE_RELEASE_BUFFERS | TG_SSL_MODE_ENABLE_PARTIAL_WRITE
            | TG_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | TG_SSL_MODE_NO_AUTO_CHAIN)
        // One read(2) per burst of records instead of one for each record header and one for its body.
        _ = tg_SSL_CTX_set_read_ahead(ctx, 1)
        guard SSL_CTX_set_cipher_list(ctx, TLSContext.intermediateCiphers) == 1,
              SSL_CTX_set_ciphersuites(ctx, TLSContext.intermediateSuites) == 1,
              tg_SSL_CTX_set1_groups_list(ctx, TLSContext.intermediateGroups) == 1 else {
            let e = TLSContext.takeErrors()
            SSL_CTX_free(ctx)
            throw SocketError("cannot apply the TLS profile: \(e)")
        }
        // Resumption from the process's session cache (`TLSSessionCache`), set up by tg_SSL_CTX_new_server.
        // One TLS 1.3 ticket per handshake (OpenSSL's default is two): clients resume with one.
        _ = SSL_CTX_set_num_tickets(ctx, 1)
        tg_SSL_CTX_enable_alpn_http11(ctx)
        if answersACMEChallenges { tg_SSL_CTX_enable_acme_tls_alpn(ctx) }

        let rc = certificate.certificatePEM.withUnsafeBufferPointer { c in
            certificate.keyPEM.withUnsafeBufferPointer { k in
                c.withMemoryRebound(to: CChar.self) { c in
                    k.withMemoryRebound(to: CChar.self) { k in
                        tg_SSL_CTX_use_pem(ctx, library.pointer, c.baseAddress, c.count, k.baseAddress, k.count)
                    }
                }
            }
        }
        if rc != Int32(TG_PEM_OK) {
            let e = TLSContext.takeErrors()
            SSL_CTX_free(ctx)
            switch rc {
            case Int32(TG_PEM_CERTIFICATE):
                throw SocketError("certificate \(certificatePath) is not a usable PEM certificate chain: \(e)")
            case Int32(TG_PEM_KEY):
                throw SocketError("private key \(keyPath) is not a usable PEM private key (an encrypted key must be "
                    + "decrypted first): \(e)")
            default:
                throw SocketError("private key \(keyPath) does not match certificate \(certificatePath)")
            }
        }
        notAfter = certificate.notAfter
    }

    deinit { SSL_CTX_free(ctx) }

    /// Creates a server session on an accepted, non-blocking socket.
    public func makeSession(fd: Int32) -> TLSSession? {
        guard let ssl = SSL_new(ctx) else { return nil }
        SSL_set_fd(ssl, fd)
        SSL_set_accept_state(ssl)
        return TLSSession(ssl: ssl, context: self)
    }

    /// The OpenSSL library loaded at run time (`OpenSSL_version(OPENSSL_VERSION)`).
    public static var openSSLVersion: String {
        guard let text = OpenSSL_version(0) else { return "OpenSSL (unknown version)" }
        return String(cString: text)
    }

    /// OpenSSL's error queue as text, cleared.
    static func takeErrors() -> String {
        var buf = [CChar](repeating: 0, count: 1024)
        tg_ssl_error_string(&buf, buf.count)
        let s = String(cBuffer: buf)
        return s.isEmpty ? "unknown OpenSSL error" : s
    }
}

/// One TLS connection (`SSL*`) over a non-blocking socket. Owned by exactly one connection, which calls `free`.
public final class TLSSession {
    private var ssl: OpaquePointer?
    /// The last read ended in WANT_READ: what OpenSSL still holds is at most part of a record, which only more bytes
    /// from the socket can complete.
    private var readNeedsSocket = false
    /// Keeps the context, and so its library context, alive while the session is.
    private let context: TLSContext

    init(ssl: OpaquePointer, context: TLSContext) {
        self.ssl = ssl
        self.context = context
    }

    deinit {
        if let ssl { SSL_free(ssl) }
    }

    /// Frees the session now (idempotent); the socket stays open.
    public func free() {
        if let ssl {
            // Shut down or not, the connection is over: free it without the session-cache lock (see the shim).
            tg_SSL_forget_quietly(ssl)
            SSL_free(ssl)
        }
        ssl = nil
    }

    /// Drives the handshake: `.bytes(0)` when it completed.
    public func handshake() -> IOResult {
        guard let ssl else { return .failed(EBADF) }
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 { return .bytes(0) }
        return map(rc)
    }

    /// Reads plaintext into buffer[offset..<offset+count].
    @inline(__always)
    public func read(into buffer: inout [UInt8], at offset: Int, count: Int) -> IOResult {
        guard let ssl else { return .failed(EBADF) }
        let rc = buffer.withUnsafeMutableBytes { raw in
            SSL_read(ssl, raw.baseAddress! + offset, Int32(min(count, Int(Int32.max))))
        }
        if rc > 0 {
            readNeedsSocket = false
            return .bytes(Int(rc))
        }
        let result = map(rc)
        if case .wouldBlock(wantsWrite: false) = result { readNeedsSocket = true }
        return result
    }

    /// Writes buffer[offset..<offset+count]; partial writes are possible (SSL_MODE_ENABLE_PARTIAL_WRITE).
    @inline(__always)
    public func write(_ buffer: [UInt8], at offset: Int, count: Int) -> IOResult {
        guard let ssl else { return .failed(EBADF) }
        let rc = buffer.withUnsafeBytes { raw in
            SSL_write(ssl, raw.baseAddress! + offset, Int32(min(count, Int(Int32.max))))
        }
        if rc > 0 { return .bytes(Int(rc)) }
        return map(rc)
    }

    /// Bytes OpenSSL already holds that a read can return without the socket (decrypted, or read ahead in whole
    /// records): epoll cannot signal them, so the caller reads again.
    ///
    /// After a read that ended in WANT_READ this is 0 until the next read: `SSL_read` only asks for the socket once
    /// it has processed every complete record it buffered, so what is left (which `SSL_has_pending` still reports,
    /// with read-ahead on) is part of a record. Reading it again would only say WANT_READ again; it waits for epoll
    /// like any other input. SSL_pending(3): with read-ahead, SSL_has_pending also counts unprocessed bytes that need
    /// not make a whole record, while SSL_pending counts only processed (decrypted) ones.
    /// https://docs.openssl.org/3.0/man3/SSL_pending/
    public var pending: Int {
        guard let ssl else { return 0 }
        let decrypted = Int(SSL_pending(ssl))
        if decrypted > 0 { return decrypted }
        if readNeedsSocket { return 0 }
        return SSL_has_pending(ssl) == 1 ? 1 : 0
    }

    /// Whether the handshake answered a TLS-ALPN-01 validation (`TLSALPNChallenges`): the connection carries no
    /// HTTP and ends now.
    public var answeredACMEChallenge: Bool {
        guard let ssl else { return false }
        return tg_SSL_is_acme_challenge(ssl) == 1
    }

    /// Sends close_notify once, without waiting for the peer's.
    public func shutdown() {
        guard let ssl else { return }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    /// "TLSv1.3" etc.
    public var protocolVersion: String {
        guard let ssl else { return "" }
        return String(cString: tg_SSL_get_version(ssl))
    }

    /// Whether this session was resumed from a ticket or the cache.
    public var resumed: Bool {
        guard let ssl else { return false }
        return SSL_session_reused(ssl) == 1
    }

    private func map(_ rc: Int32) -> IOResult {
        let err = SSL_get_error(ssl, rc)
        switch err {
        case SSL_ERROR_WANT_READ:
            return .wouldBlock(wantsWrite: false)
        case SSL_ERROR_WANT_WRITE:
            return .wouldBlock(wantsWrite: true)
        case SSL_ERROR_ZERO_RETURN:
            return .eof
        case SSL_ERROR_SYSCALL:
            let e = errno
            ERR_clear_error()
            // An unexpected EOF from a peer that vanished without close_notify reads as EOF too.
            return e == 0 ? .eof : .failed(e)
        default:
            ERR_clear_error()
            return .failed(-1)
        }
    }
}

/// The process's TLS session cache (kept in the C shim, shared by every worker's context), which TLS 1.2 session
/// IDs and TLS 1.3 tickets name: as Mozilla's intermediate profile configures nginx (a shared cache, tickets off),
/// so no ticket key exists to protect or rotate. About 10 MB at most, least recently used sessions dropped first.
/// A session resumes for two hours after it was issued, and however often it was renewed (a TLS 1.3 resumption
/// gets a fresh ticket), for at most a day after its full handshake; then the client checks the certificate again.
/// Sessions are bound to the certificate they were made with: after a change none resumes.
public enum TLSSessionCache {
    /// Empties the cache: no session made so far resumes.
    public static func clear() {
        tg_session_cache_clear()
    }

    /// Sets the cache's size in bytes (0: no resumption); sessions that no longer fit are dropped, least recently
    /// used first. The cache is the process's: the server sets it from `tls-session-cache` at start.
    public static func setBytes(_ bytes: Int) {
        tg_session_cache_set_bytes(max(0, bytes))
    }

    /// The cache's size in bytes.
    public static var bytes: Int { tg_session_cache_bytes() }

    /// The default size, 10 MB, as nginx's `ssl_session_cache shared:SSL:10m`.
    public static let defaultBytes = Int(TG_SESSION_CACHE_DEFAULT_BYTES)

    /// Sessions in the cache now.
    public static var count: Int { tg_session_cache_count() }

    /// Moves the clock session ages are measured on forward (tests).
    public static func advanceClock(seconds: Int64) {
        tg_tls_clock_advance(seconds)
    }

    /// Moves whenever the cache was emptied or resized (tests).
    public static var generation: UInt { tg_session_cache_generation() }
}
