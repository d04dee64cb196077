import COpenSSL
import Testing
import TollgateIO

/// The TLS listener: protocol versions, ALPN and session resumption, seen from a verifying client.
@Suite(.serialized) struct TLSTests {
    /// A key that is not the certificate's is reported as such, not as an unreadable key.
    @Test func aKeyOfAnotherCertificateIsNamedAsNotMatching() throws {
        let dir = try OpsTempDirectory()
        let cert = dir.file("a.pem"), key = dir.file("a-key.pem"), otherCert = dir.file("b.pem"), otherKey = dir.file("b-key.pem")
        try DevelopmentCertificate.generate(keyPath: key, certificatePath: cert, commonName: "localhost", subjectAltNames: nil)
        try DevelopmentCertificate.generate(keyPath: otherKey, certificatePath: otherCert, commonName: "localhost",
                                            subjectAltNames: nil)
        do {
            _ = try TLSContext(certificatePath: cert, keyPath: otherKey)
            Issue.record("a key of another certificate was accepted")
        } catch {
            #expect(error.description == "private key \(otherKey) does not match certificate \(cert)")
        }
        _ = try TLSContext(certificatePath: cert, keyPath: key)
    }

    /// A GET /api/version over `client` answers 200 (the connection really works after the handshake).
    private func checkVersionRequest(_ client: HTTPClient) throws {
        try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.text.contains("\"version\""))
    }

    @Test func tls13HandshakeVerifiesAndServes() throws {
        try withProxyAndFake { proxy, _ in
            let stream = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(maxVersion: TLS1_3_VERSION))
            #expect(stream.version == TLS1_3_VERSION)
            #expect(stream.alpnProtocol == "http/1.1")
            try checkVersionRequest(HTTPClient(stream))
        }
    }

    @Test func tls12HandshakeVerifiesAndServes() throws {
        try withProxyAndFake { proxy, _ in
            let stream = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(maxVersion: TLS1_2_VERSION))
            #expect(stream.version == TLS1_2_VERSION)
            #expect(stream.alpnProtocol == "http/1.1")
            try checkVersionRequest(HTTPClient(stream))
        }
    }

    @Test func tls11IsRefused() throws {
        try withProxyAndFake { proxy, fake in
            let options = TLSClientOptions(maxVersion: TLS1_1_VERSION, minVersion: TLS1_1_VERSION)
            #expect(throws: WireError.self) { _ = try TLSStream(port: proxy.tlsPort, options: options) }
            // The listener is still healthy afterwards.
            try checkVersionRequest(try proxy.tls())
            #expect(fake.requests.count == 1)
        }
    }

    @Test func aWrongHostNameFailsVerification() throws {
        try withProxyAndFake { proxy, _ in
            #expect(throws: WireError.self) {
                _ = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(hostname: "example.com"))
            }
        }
    }
}
