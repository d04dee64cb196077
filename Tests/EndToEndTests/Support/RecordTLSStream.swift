import COpenSSL
import Glibc

/// A TLS client whose records the test cuts up itself: OpenSSL encrypts into memory, and the test decides which of
/// those bytes reach the socket, and when (part of a record, a record byte by byte). Blocking socket with the
/// harness's timeouts; verifies nothing (the TLS listener's chain is `TLSStream`'s business).
///
/// Owns its `SSL_CTX`, `SSL` (which owns both memory BIOs) and socket; `close` (or deinit) frees them.
final class RecordTLSStream: ByteStream {
    private var ctx: OpaquePointer?
    private var ssl: OpaquePointer?
    private var fd: Int32 = -1
    private let rbio: OpaquePointer
    private let wbio: OpaquePointer

    /// Connects to 127.0.0.1:port and completes the handshake over the memory BIOs.
    init(port: UInt16) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw WireError("SSL_CTX_new failed") }
        self.ctx = ctx
        guard let ssl = SSL_new(ctx), let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            throw WireError("SSL_new or BIO_new failed")
        }
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
        SSL_set_bio(ssl, rbio, wbio)
        SSL_set_connect_state(ssl)
        fd = try ClientSocket.connect(port: port)
        while true {
            ERR_clear_error()
            let rc = SSL_do_handshake(ssl)
            try sendAll(takeCiphertext())
            if rc == 1 { break }
            guard SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ else { throw WireError("handshake failed: \(TLSStream.errors())") }
            try receiveIntoBIO()
        }
    }

    deinit { close() }

    /// Encrypts `plaintext` as TLS records and returns their bytes without sending them (one record per 16 KiB).
    func seal(_ plaintext: [UInt8]) throws -> [UInt8] {
        guard let ssl else { throw WireError("closed") }
        ERR_clear_error()
        let rc = plaintext.withUnsafeBytes { SSL_write(ssl, $0.baseAddress!, Int32(plaintext.count)) }
        guard rc == Int32(plaintext.count) else { throw WireError("SSL_write failed") }
        return takeCiphertext()
    }

    /// Sends bytes as they are (whole records, parts of records).
    func sendRaw(_ bytes: [UInt8]) throws { try sendAll(bytes) }

    /// Sends bytes one `send` each (TCP_NODELAY is on: each is its own segment on loopback).
    func sendByteByByte(_ bytes: [UInt8]) throws {
        for b in bytes { try sendAll([b]) }
    }

    func write(_ bytes: [UInt8]) throws { try sendAll(try seal(bytes)) }

    func readSome(max: Int) throws -> [UInt8] {
        guard let ssl else { throw WireError("closed") }
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            ERR_clear_error()
            let rc = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress!, Int32(max)) }
            if rc > 0 { return Array(buffer[0..<Int(rc)]) }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ:
                if try !receiveIntoBIO() { return [] }
            case SSL_ERROR_ZERO_RETURN:
                return []
            default:
                return []
            }
        }
    }

    /// The socket, for shutdown(2) and the like.
    var socket: Int32 { fd }

    func close() {
        if let s = ssl { SSL_free(s) }
        ssl = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        if let c = ctx { SSL_CTX_free(c) }
        ctx = nil
    }

    private func takeCiphertext() -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { BIO_read(wbio, $0.baseAddress!, Int32($0.count)) }
            if n <= 0 { return out }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
    }

    /// Reads what the socket has into the read BIO; false at EOF.
    @discardableResult
    private func receiveIntoBIO() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        if n == 0 { return false }
        guard n > 0 else {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw WireError("TLS read timed out") }
            return false
        }
        _ = chunk.withUnsafeBytes { BIO_write(rbio, $0.baseAddress!, Int32(n)) }
        return true
    }

    private func sendAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw WireError("send: errno \(errno)") }
            offset += n
        }
    }
}
