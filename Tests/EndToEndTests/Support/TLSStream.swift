import COpenSSL
import Glibc

/// How a test's TLS client behaves.
struct TLSClientOptions {
    /// Highest protocol version offered (`TLS1_3_VERSION`, `TLS1_2_VERSION`, `TLS1_1_VERSION`...), 0 for OpenSSL's.
    var maxVersion: Int32 = 0
    /// Lowest version allowed; setting TLS 1.1 also drops the client's security level so it really offers 1.1.
    var minVersion: Int32 = 0
    /// Name sent as SNI and checked against the certificate.
    var hostname = "localhost"
    /// A session from an earlier connection (see `TLSStream.session()`), offered for resumption.
    var session: TLSClientSession?
    /// The CA certificates the chain is verified against (PEM file); nil: the test CA.
    var caFile: String?
    /// false: the chain is not verified (to look at whatever certificate is served).
    var verifies = true
    /// The groups offered (`SSL_CTX_set1_groups_list`, e.g. "brainpoolP256r1:P-256"); nil: OpenSSL's.
    var groups: String?
}

/// A TLS session kept for resumption; frees its `SSL_SESSION` when released.
final class TLSClientSession {
    let pointer: OpaquePointer
    /// Takes ownership of one reference to `pointer`.
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { SSL_SESSION_free(pointer) }
}

/// A blocking TLS 1.2/1.3 client connection: verifies the proxy's chain against the test CA and the host name,
/// sends SNI and offers ALPN "http/1.1". Owns its `SSL_CTX`, `SSL` and socket; `close` (or deinit) frees them.
final class TLSStream: ByteStream {
    private var ctx: OpaquePointer?
    private var ssl: OpaquePointer?
    private var fd: Int32 = -1

    /// Connects to 127.0.0.1:port and completes the handshake, or throws with OpenSSL's reason.
    init(port: UInt16, options: TLSClientOptions = TLSClientOptions()) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw WireError("SSL_CTX_new failed") }
        self.ctx = ctx
        guard SSL_CTX_load_verify_locations(ctx, options.caFile ?? TestCertificates.shared.caCertificatePath,
                                            nil) == 1 else {
            throw WireError("cannot load the CA file: \(TLSStream.errors())")
        }
        SSL_CTX_set_verify(ctx, options.verifies ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
        if options.minVersion != 0 {
            if options.minVersion < TLS1_2_VERSION {
                SSL_CTX_set_security_level(ctx, 0)
                _ = SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0")
            }
            _ = SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(options.minVersion), nil)
        }
        if options.maxVersion != 0 {
            _ = SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(options.maxVersion), nil)
        }
        if let groups = options.groups {
            let set = groups.withCString { SSL_CTX_ctrl(ctx, SSL_CTRL_SET_GROUPS_LIST, 0, UnsafeMutableRawPointer(mutating: $0)) }
            guard set == 1 else { throw WireError("cannot offer the groups \(groups): \(TLSStream.errors())") }
        }
        fd = try ClientSocket.connect(port: port)
        guard let ssl = SSL_new(ctx) else { throw WireError("SSL_new failed") }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        _ = options.hostname.withCString { name in
            SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: name))
        }
        guard !options.verifies || SSL_set1_host(ssl, options.hostname) == 1 else { throw WireError("SSL_set1_host failed") }
        let alpn: [UInt8] = [8] + Array("http/1.1".utf8)
        guard SSL_set_alpn_protos(ssl, alpn, UInt32(alpn.count)) == 0 else { throw WireError("ALPN setup failed") }
        if let session = options.session { SSL_set_session(ssl, session.pointer) }
        ERR_clear_error()
        let rc = SSL_connect(ssl)
        guard rc == 1 else {
            let code = SSL_get_error(ssl, rc)
            let detail = TLSStream.errors()
            close()
            throw WireError("handshake failed (SSL_get_error \(code)): \(detail)")
        }
    }

    deinit { close() }

    /// The SHA-256 of the certificate the server sent, in hex.
    var peerFingerprint: String {
        guard let ssl, let cert = SSL_get1_peer_certificate(ssl) else { return "" }
        defer { X509_free(cert) }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(cert, EVP_sha256(), &digest, &length) == 1 else { return "" }
        return digest[0..<Int(length)].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// The negotiated protocol version (`TLS1_3_VERSION`...).
    var version: Int32 { ssl.map { SSL_version($0) } ?? 0 }

    /// The protocol the server selected with ALPN, or "" when it selected none.
    var alpnProtocol: String {
        guard let ssl else { return "" }
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return "" }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// Whether this connection resumed the offered session.
    var sessionReused: Bool { ssl.map { SSL_session_reused($0) == 1 } ?? false }

    /// The current session for a later resumption (with TLS 1.3 it arrives after the handshake: read a response
    /// first).
    func session() -> TLSClientSession? {
        guard let ssl, let s = SSL_get1_session(ssl) else { return nil }
        return TLSClientSession(s)
    }

    func write(_ bytes: [UInt8]) throws { try TLSWire.write(ssl, bytes) }

    func readSome(max: Int) throws -> [UInt8] { try TLSWire.read(ssl, max: max) }

    /// Sends close_notify (without waiting for the proxy's; freeing a session without it makes OpenSSL mark the
    /// session not resumable), then frees the session, the socket and the context.
    func close() { TLSWire.close(&ssl, &fd, &ctx) }

    /// OpenSSL's error queue as text, cleared.
    static func errors() -> String {
        var parts: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            parts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.joined(separator: "; ")
    }
}
