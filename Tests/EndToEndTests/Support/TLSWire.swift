import COpenSSL
import Glibc

/// The blocking TLS reads, writes and teardown the test clients share (`TLSStream`, `PrefixedTLSStream`).
enum TLSWire {
    static func write(_ ssl: OpaquePointer?, _ bytes: [UInt8]) throws {
        guard let ssl else { throw WireError("closed") }
        guard !bytes.isEmpty else { return }
        ERR_clear_error()
        let rc = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress!, Int32(bytes.count)) }
        guard rc == Int32(bytes.count) else {
            throw WireError("SSL_write failed (SSL_get_error \(SSL_get_error(ssl, rc)), errno \(errno))")
        }
    }

    /// Up to `max` bytes; empty at EOF (with or without close_notify, or a reset: the proxy closed either way).
    static func read(_ ssl: OpaquePointer?, max: Int) throws -> [UInt8] {
        guard let ssl else { throw WireError("closed") }
        var buffer = [UInt8](repeating: 0, count: max)
        ERR_clear_error()
        let rc = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress!, Int32(max)) }
        if rc > 0 { return Array(buffer[0..<Int(rc)]) }
        let code = SSL_get_error(ssl, rc)
        let savedErrno = errno
        ERR_clear_error()
        switch code {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            // A blocking socket only asks to retry when SO_RCVTIMEO ran out.
            throw WireError("TLS read timed out")
        case SSL_ERROR_ZERO_RETURN:
            return []
        case SSL_ERROR_SYSCALL where savedErrno == EAGAIN || savedErrno == EWOULDBLOCK:
            throw WireError("TLS read timed out")
        default:
            return []
        }
    }

    /// close_notify (not waiting for the peer's), then frees the session, the socket and the context. Idempotent.
    static func close(_ ssl: inout OpaquePointer?, _ fd: inout Int32, _ ctx: inout OpaquePointer?) {
        if let s = ssl {
            ERR_clear_error()
            _ = SSL_shutdown(s)
            ERR_clear_error()
            SSL_free(s)
        }
        ssl = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        if let c = ctx { SSL_CTX_free(c) }
        ctx = nil
    }
}
