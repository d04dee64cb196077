import COpenSSL
import Glibc

/// A blocking TLS client like `TLSStream` that can send bytes before its ClientHello (a PROXY protocol header) —
/// in their own write, or in the same write as the ClientHello — and reports the certificate the proxy served.
/// Verifies the chain against the test CA and the name "localhost". Owns its context, session and socket.
final class PrefixedTLSStream: ByteStream {
    private var ctx: OpaquePointer?
    private var ssl: OpaquePointer?
    private var fd: Int32 = -1

    /// Connects to 127.0.0.1:port, sends `prefix` (alone, or glued to the ClientHello when `sameWrite`), then
    /// completes the handshake on the socket, or throws with OpenSSL's reason.
    init(port: UInt16, prefix: [UInt8] = [], sameWrite: Bool = false) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw WireError("SSL_CTX_new failed") }
        self.ctx = ctx
        guard SSL_CTX_load_verify_locations(ctx, TestCertificates.shared.caCertificatePath, nil) == 1 else {
            throw WireError("cannot load the test CA: \(TLSStream.errors())")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        fd = try ClientSocket.connect(port: port)
        guard let ssl = SSL_new(ctx) else { throw WireError("SSL_new failed") }
        self.ssl = ssl
        _ = "localhost".withCString { name in
            SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: name))
        }
        guard SSL_set1_host(ssl, "localhost") == 1 else { throw WireError("SSL_set1_host failed") }
        ERR_clear_error()
        if sameWrite {
            // Produce the ClientHello into memory, send it with the prefix in one send(2), then move the half-done
            // handshake onto the socket (the handshake state lives in the SSL, not in its BIOs).
            guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else { throw WireError("BIO_new failed") }
            SSL_set_bio(ssl, rbio, wbio)
            let rc = SSL_connect(ssl)
            guard rc <= 0, SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ else {
                throw WireError("expected the handshake to wait for the server: \(TLSStream.errors())")
            }
            var hello: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { BIO_read(wbio, $0.baseAddress!, Int32($0.count)) }
                if n <= 0 { break }
                hello += buffer[0..<Int(n)]
            }
            guard !hello.isEmpty else { throw WireError("no ClientHello produced") }
            try sendAll(prefix + hello)
            SSL_set_fd(ssl, fd)
        } else if !prefix.isEmpty {
            try sendAll(prefix)
            SSL_set_fd(ssl, fd)
        } else {
            SSL_set_fd(ssl, fd)
        }
        let rc = SSL_connect(ssl)
        guard rc == 1 else {
            let code = SSL_get_error(ssl, rc)
            let detail = TLSStream.errors()
            close()
            throw WireError("handshake failed (SSL_get_error \(code)): \(detail)")
        }
    }

    deinit { close() }

    private func sendAll(_ bytes: [UInt8]) throws {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL)) }
        guard n == bytes.count else { throw WireError("send: \(n) of \(bytes.count) bytes, errno \(errno)") }
    }

    /// SHA-256 of the DER certificate the proxy presented, hex.
    var peerFingerprint: String {
        guard let ssl, let cert = SSL_get1_peer_certificate(ssl) else { return "" }
        defer { X509_free(cert) }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(cert, EVP_sha256(), &digest, &length) == 1 else { return "" }
        return digest[0..<Int(length)].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    func write(_ bytes: [UInt8]) throws { try TLSWire.write(ssl, bytes) }

    func readSome(max: Int) throws -> [UInt8] { try TLSWire.read(ssl, max: max) }

    func close() { TLSWire.close(&ssl, &fd, &ctx) }
}

/// PROXY protocol headers (HAProxy proxy-protocol.txt) for tests.
enum ProxyHeader {
    /// `PROXY TCP4 src dst sport dport\r\n`.
    static func v1(_ source: String, port: UInt16 = 40000, destination: String = "10.0.0.1", destinationPort: UInt16 = 443) -> [UInt8] {
        Array("PROXY TCP4 \(source) \(destination) \(port) \(destinationPort)\r\n".utf8)
    }

    /// The binary v2 header, PROXY command, TCP over IPv4, no TLVs.
    static func v2(_ source: (UInt8, UInt8, UInt8, UInt8), port: UInt16 = 40000) -> [UInt8] {
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        var b = signature + [0x21, 0x11, 0x00, 12]
        b += [source.0, source.1, source.2, source.3, 10, 0, 0, 1]
        b += [UInt8(port >> 8), UInt8(port & 0xFF), 0x01, 0xBB]
        return b
    }
}

/// Certificates for reload tests.
enum OpsCertificates {
    /// SHA-256 of the DER form of the first certificate in a PEM file, hex ("" if unreadable).
    static func fingerprint(ofPEMFile path: String) -> String {
        guard let bio = BIO_new_file(path, "r") else { return "" }
        defer { BIO_free(bio) }
        guard let cert = PEM_read_bio_X509(bio, nil, nil, nil) else { return "" }
        defer { X509_free(cert) }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(cert, EVP_sha256(), &digest, &length) == 1 else { return "" }
        return digest[0..<Int(length)].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// The test CA's key (beside its certificate), for signing more leaves.
    static var caKeyPath: String {
        let ca = TestCertificates.shared.caCertificatePath
        return String(ca[..<ca.lastIndex(of: "/")!]) + "/ca-key.pem"
    }
}
