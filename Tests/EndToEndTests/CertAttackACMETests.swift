import COpenSSL
import Foundation
import Testing
@testable import TollgateIO

/// The TLS-ALPN-01 path against the certificate callback: the client-hello callback swaps a P-256 challenge
/// certificate onto the connection before the version is chosen, whatever the served key (with the callback: P-256,
/// RSA, Ed25519; without: brainpool). Driven in memory over a socket pair, without a CA.
@Suite(.serialized) struct CertAttackACMETests {
    /// Runs the handshake of `client` and `server` (non-blocking, over a socket pair) to its end; false if either failed.
    private func handshake(_ client: OpaquePointer, _ server: OpaquePointer) -> Bool {
        var clientDone = false, serverDone = false
        for _ in 0..<1_000 where !(clientDone && serverDone) {
            if !clientDone {
                let rc = SSL_do_handshake(client)
                if rc == 1 { clientDone = true } else if SSL_get_error(client, rc) != SSL_ERROR_WANT_READ { return false }
            }
            if !serverDone {
                let rc = SSL_do_handshake(server)
                if rc == 1 { serverDone = true } else if SSL_get_error(server, rc) != SSL_ERROR_WANT_READ { return false }
            }
        }
        return clientDone && serverDone
    }

    /// The certificate a TLS-ALPN-01 validation for a name is shown, and the version, served with `kind` as the
    /// listener's key; the client lists `sigalgs` first (a validator preferring RSA-PSS, as Go's crypto/tls does).
    @Test(arguments: [("ec:P-256", TLS1_3_VERSION), ("ec:brainpoolP256r1", TLS1_3_VERSION), ("ed25519", TLS1_3_VERSION),
                      ("rsa:2048", TLS1_3_VERSION), ("rsa:2048", TLS1_2_VERSION), ("ec:brainpoolP256r1", TLS1_2_VERSION)])
    func aValidationGetsTheChallengeCertificate(kind: String, maxVersion: Int32) throws {
        // A name of its own: the challenges are the process's, and the ACME suites answer theirs beside this one.
        let domain = "cert-attack.test"
        let dir = try OpsTempDirectory()
        let served = try CertAttackTests.make(kind, in: dir, name: "served")
        let challenge = try CertAttackTests.make("ec:P-256", in: dir, name: "challenge")
        let challengePEM = try Array(Data(contentsOf: URL(fileURLWithPath: challenge.cert)))
        #expect(TLSALPNChallenges.set(domain: domain, certificate: challengePEM,
                                      key: try Array(Data(contentsOf: URL(fileURLWithPath: challenge.key)))))
        defer { TLSALPNChallenges.remove(domain: domain) }
        let context = try TLSContext(certificate: TLSCertificate(certificatePath: served.cert, keyPath: served.key),
                                     library: TLSLibrary(), answersACMEChallenges: true)

        var fds: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let clientCtx = try #require(SSL_CTX_new(TLS_client_method()))
        defer { SSL_CTX_free(clientCtx) }
        _ = SSL_CTX_ctrl(clientCtx, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(maxVersion), nil)
        let sigalgs = "rsa_pss_rsae_sha256:ecdsa_secp256r1_sha256:ed25519:rsa_pss_rsae_sha384:rsa_pkcs1_sha256"
        try #require(sigalgs.withCString {
            SSL_CTX_ctrl(clientCtx, SSL_CTRL_SET_SIGALGS_LIST, 0, UnsafeMutableRawPointer(mutating: $0)) } == 1)
        // TLS 1.2: ECDHE-RSA listed first, as the RSA-PSS schemes are for TLS 1.3.
        try #require(SSL_CTX_set_cipher_list(clientCtx, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256") == 1)
        _ = "X25519:P-256:P-384:brainpoolP256r1".withCString {
            SSL_CTX_ctrl(clientCtx, SSL_CTRL_SET_GROUPS_LIST, 0, UnsafeMutableRawPointer(mutating: $0)) }
        let client = try #require(SSL_new(clientCtx))
        defer { SSL_free(client) }
        SSL_set_fd(client, fds[0])
        _ = domain.withCString {
            SSL_ctrl(client, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0))
        }
        let alpn: [UInt8] = [10] + Array("acme-tls/1".utf8)
        try #require(SSL_set_alpn_protos(client, alpn, UInt32(alpn.count)) == 0)
        SSL_set_connect_state(client)
        let server = try #require(SSL_new(context.ctx))
        defer { SSL_free(server) }
        SSL_set_fd(server, fds[1])
        SSL_set_accept_state(server)

        try #require(handshake(client, server), "\(kind): \(TLSStream.errors())")
        #expect(SSL_version(client) == maxVersion, "\(kind)")
        let peer = try #require(SSL_get1_peer_certificate(client))
        defer { X509_free(peer) }
        let bio = BIO_new_mem_buf(challengePEM, Int32(challengePEM.count))
        let expected = try #require(PEM_read_bio_X509(bio, nil, nil, nil))
        BIO_free(bio)
        defer { X509_free(expected) }
        // With an RSA certificate served, the challenge pair must replace it, not sit beside it: TLS 1.3 signs with
        // the first of the client's signature schemes the connection has a key for (TLS 1.2: the first of its
        // ciphers), so a validator listing RSA-PSS first (Go's crypto/tls does) would be shown the served RSA one.
        let isChallenge = X509_cmp(peer, expected) == 0
        #expect(isChallenge, "\(kind) at \(maxVersion): the validation saw the served certificate, not the challenge's")
    }
}
