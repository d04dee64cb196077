import COpenSSL
import CTollgate
import Glibc

/// The trust and protocol settings of outgoing TLS connections (the ACME client's): TLS 1.2 or later, the peer's
/// chain verified against the system's CA store plus an optional extra root file, and its name checked.
///
/// Immutable once made; OpenSSL allows sessions to be made from one `SSL_CTX` on several threads. Owns the
/// `SSL_CTX` and frees it in `deinit`.
public final class TLSClient: @unchecked Sendable {
    let ctx: OpaquePointer

    /// A client context trusting the system store and, when given, the PEM certificates in `extraRootFile` (a
    /// private or test CA). Throws when OpenSSL refuses the file.
    public init(extraRootFile: String?) throws(SocketError) {
        guard let made = SSL_CTX_new(TLS_client_method()) else {
            throw SocketError("cannot create a TLS client context: \(TLSContext.takeErrors())")
        }
        ctx = made
        _ = tg_SSL_CTX_set_min_proto_version(ctx, TG_TLS1_2_VERSION)
        _ = tg_SSL_CTX_set_options(ctx, TG_SSL_OP_NO_COMPRESSION | TG_SSL_OP_NO_RENEGOTIATION | TG_SSL_OP_IGNORE_UNEXPECTED_EOF)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        // A missing system store is not fatal when an extra root is given (a test CA on a bare machine).
        if SSL_CTX_set_default_verify_paths(ctx) != 1 { ERR_clear_error() }
        if let extraRootFile, SSL_CTX_load_verify_locations(ctx, extraRootFile, nil) != 1 {
            throw SocketError("cannot read the CA certificates in \(extraRootFile): \(TLSContext.takeErrors())")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// A verified connection to `host`:`port` (a name, or an IP literal checked against the certificate's IP
    /// addresses). Blocking, for threads of their own: connecting, each write and each read wait at most
    /// `timeoutMillis`.
    public func connect(host: String, port: UInt16, timeoutMillis: Int32) throws(SocketError) -> TLSClientStream {
        let address = try SocketAddress.resolve(host: host, port: port)
        let fd: Int32
        switch Socket.connect(to: address) {
        case .connected(let f):
            fd = f
        case .failed(let e):
            throw SocketError("cannot connect to \(host):\(port): \(Syscall.describe(e))", code: e)
        case .inProgress(let f):
            var p = pollfd(fd: f, events: Int16(POLLOUT), revents: 0)
            var ready: Int32
            repeat { ready = poll(&p, 1, timeoutMillis) } while ready < 0 && errno == EINTR
            let e = ready == 1 ? Syscall.socketError(f) : ETIMEDOUT
            guard e == 0 else {
                Syscall.close(f)
                throw SocketError("cannot connect to \(host):\(port): \(Syscall.describe(e))", code: e)
            }
            fd = f
        }
        // From here on the socket blocks, with a time limit on every send and receive.
        Syscall.setBlocking(fd)
        var limit = timeval(tv_sec: Int(timeoutMillis / 1000), tv_usec: Int(timeoutMillis % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard let ssl = SSL_new(ctx) else {
            Syscall.close(fd)
            throw SocketError("cannot create a TLS session: \(TLSContext.takeErrors())")
        }
        let stream = TLSClientStream(ssl: ssl, fd: fd, client: self)
        SSL_set_fd(ssl, fd)
        if SocketAddress.parseHost(host) != nil {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            _ = tg_SSL_set_tlsext_host_name(ssl, host)
            SSL_set1_host(ssl, host)
        }
        ERR_clear_error()
        if SSL_connect(ssl) != 1 {
            let verify = SSL_get_verify_result(ssl)
            let reason = verify != X509_V_OK
                ? "certificate verify failed: " + String(cString: X509_verify_cert_error_string(verify))
                : TLSContext.takeErrors()
            stream.close()
            throw SocketError("TLS handshake with \(host):\(port) failed: \(reason)")
        }
        return stream
    }
}

/// One blocking TLS connection made by `TLSClient.connect`. Owned by one thread, which calls `close` (or lets
/// `deinit` do it).
public final class TLSClientStream {
    private var ssl: OpaquePointer?
    private var fd: Int32
    /// Keeps the context alive while the session is.
    private let client: TLSClient

    init(ssl: OpaquePointer, fd: Int32, client: TLSClient) {
        self.ssl = ssl
        self.fd = fd
        self.client = client
    }

    deinit { close() }

    /// The negotiated protocol ("TLSv1.3").
    public var protocolVersion: String {
        guard let ssl, let name = tg_SSL_get_version(ssl) else { return "" }
        return String(cString: name)
    }

    /// Writes all of `bytes`; throws on a failure or a timeout.
    public func write(_ bytes: [UInt8]) throws(SocketError) {
        guard let ssl else { throw SocketError("connection closed") }
        var sent = 0
        while sent < bytes.count {
            ERR_clear_error()
            let n = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + sent, Int32(min(bytes.count - sent, 1 << 20))) }
            guard n > 0 else { throw SocketError("cannot send: \(failure(n))") }
            sent += Int(n)
        }
    }

    /// Reads into buffer[offset..<offset+count]: how many bytes, 0 at the end of the stream; throws on a failure or
    /// a timeout.
    public func read(into buffer: inout [UInt8], at offset: Int, count: Int) throws(SocketError) -> Int {
        guard let ssl else { throw SocketError("connection closed") }
        ERR_clear_error()
        let n = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress! + offset, Int32(min(count, 1 << 20))) }
        if n > 0 { return Int(n) }
        if SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN { return 0 }
        throw SocketError("cannot receive: \(failure(n))")
    }

    /// Sends close_notify (without waiting for the peer's), frees the session and closes the socket. Idempotent.
    public func close() {
        if let ssl {
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
            SSL_free(ssl)
            ERR_clear_error()
        }
        ssl = nil
        if fd >= 0 { Syscall.close(fd) }
        fd = -1
    }

    private func failure(_ rc: Int32) -> String {
        let e = errno
        guard let ssl else { return "connection closed" }
        switch SSL_get_error(ssl, rc) {
        case SSL_ERROR_SYSCALL:
            if e == EAGAIN || e == EWOULDBLOCK { return "no answer in time" }
            return e == 0 ? "connection closed" : Syscall.describe(e)
        case SSL_ERROR_ZERO_RETURN: return "connection closed"
        default: return TLSContext.takeErrors()
        }
    }
}
