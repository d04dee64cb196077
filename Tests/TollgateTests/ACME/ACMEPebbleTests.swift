import Foundation
import Glibc
import Synchronization
import Testing
import TollgateIO
import TollgateTestSupport
@testable import Tollgate

/// The whole RFC 8555 flow against Debian's Pebble, with HTTP-01 answered by a small responder of the test's own.
@Suite(.serialized, .enabled(if: PebbleProcess.available, "pebble is not installed (apt-get install pebble)"))
struct ACMEPebbleTests {
    /// Answers `GET /.well-known/acme-challenge/<token>` on 127.0.0.1:`port` from its table, one connection at a
    /// time, on a thread of its own.
    final class HTTP01Responder: ChallengeResponder, @unchecked Sendable {
        let challengeTypes = ["http-01"]
        let port: UInt16
        private let table = Mutex<[String: String]>([:])
        private let listener: Int32
        let served = Atomic<Int>(0)

        init() throws {
            port = try PebbleProcess.freePort()
            listener = try Socket.listen(on: SocketAddress(parsing: "127.0.0.1:\(port)")!, reusePort: false)
            Syscall.setBlocking(listener)
            let thread = Thread { [self] in
                serve()
                ended.signal()
            }
            thread.start()
        }

        /// Signalled when the serving thread has returned.
        private let ended = DispatchSemaphore(value: 0)

        /// Stops accepting and waits for the serving thread (nothing of it may outlive the test).
        func stop() {
            Socket.shutdownBoth(listener)
            ended.wait()
            Syscall.close(listener)
        }

        func present(_ answer: ChallengeAnswer) {
            if case .http01(let token, let keyAuthorization) = answer { table.withLock { $0[token] = keyAuthorization } }
        }

        func withdraw(_ answer: ChallengeAnswer) {
            if case .http01(let token, _) = answer { _ = table.withLock { $0.removeValue(forKey: token) } }
        }

        private func serve() {
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 { if errno == EINTR { continue } else { return } }
                ACMEPebbleTests.limitWaits(fd)
                var request: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while request.firstRange(of: [13, 10, 13, 10]) == nil {
                    let n = read(fd, &buffer, buffer.count)
                    if n <= 0 { break }
                    request += buffer[0..<n]
                }
                let line = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self).split(separator: " ")
                let prefix = "/.well-known/acme-challenge/"
                var reply = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                if line.count == 3, line[1].hasPrefix(prefix),
                   let answer = table.withLock({ $0[String(line[1].dropFirst(prefix.count))] }) {
                    reply = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(answer.utf8.count)\r\nConnection: close\r\n\r\n\(answer)"
                    served.add(1, ordering: .relaxed)
                }
                _ = Syscall.writeAll(fd, Array(reply.utf8))
                Syscall.close(fd)
            }
        }
    }

    /// Blocking reads and writes on `fd` give up after 5 s: a validation connection Pebble abandons cannot hold a
    /// responder's thread (and `stop`) for long.
    static func limitWaits(_ fd: Int32) {
        var limit = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A CA that trickles its answer, each byte well within the read timeout: the whole answer has a deadline, so
    /// the ACME thread (and a stop of the server) is not held for as long as the CA likes.
    @Test func anAnswerThatTricklesIsCutAtItsDeadline() throws {
        // As the server does: the trickling side writes on after the client has gone.
        signal(SIGPIPE, SIG_IGN)
        let directory = FileManager.default.temporaryDirectory.path + "/trickle-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try DevelopmentCertificate.generate(keyPath: directory + "/ca-key.pem", certificatePath: directory + "/ca.pem",
                                            commonName: "trickle CA", subjectAltNames: nil, isCA: true)
        try DevelopmentCertificate.generate(keyPath: directory + "/key.pem", certificatePath: directory + "/cert.pem",
                                            commonName: "127.0.0.1", subjectAltNames: "IP:127.0.0.1",
                                            caKeyPath: directory + "/ca-key.pem", caCertificatePath: directory + "/ca.pem")
        let port = try PebbleProcess.freePort()
        let listener = try Socket.listen(on: SocketAddress(parsing: "127.0.0.1:\(port)")!, reusePort: false)
        Syscall.setBlocking(listener)
        let context = try TLSContext(certificate: TLSCertificate(certificatePath: directory + "/cert.pem",
                                                                 keyPath: directory + "/key.pem"), library: TLSLibrary())
        let ended = DispatchSemaphore(value: 0)
        let server = Thread {
            defer { ended.signal() }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            defer { Syscall.close(fd) }
            Self.limitWaits(fd)
            guard let session = context.makeSession(fd: fd) else { return }
            defer { session.free() }
            guard case .bytes = session.handshake() else { return }
            var request = [UInt8](repeating: 0, count: 4096)
            _ = session.read(into: &request, at: 0, count: request.count)
            var answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".utf8)
            for _ in 0..<40 {   // a byte every 50 ms, for two seconds at most
                guard case .bytes = session.write(answer, at: 0, count: answer.count) else { return }
                answer = [UInt8(ascii: "x")]
                usleep(50_000)
            }
        }
        server.start()
        defer {
            Socket.shutdownBoth(listener)
            ended.wait()
            Syscall.close(listener)
        }
        var http = ACMEHTTPClient(tls: try TLSClient(extraRootFile: directory + "/ca.pem"), timeoutMillis: 10_000)
        http.answerMillis = 300
        #expect {
            _ = try http.send("GET", "https://127.0.0.1:\(port)/directory")
        } throws: { error in
            "\(error)".contains("took too long")
        }
    }

    private func client(_ pebble: PebbleProcess) throws -> ACMEClient {
        let http = ACMEHTTPClient(tls: try TLSClient(extraRootFile: pebble.serverRootFile), timeoutMillis: 10_000)
        return ACMEClient(directoryURL: pebble.directoryURL, transport: http, key: AccountKey(P256Key())) { seconds in
            usleep(UInt32(min(seconds, 1) * 200_000)) // Pebble without VA sleeps is done by the next poll
        }
    }

    @Test func issuesWithHTTP01() throws {
        let responder = try HTTP01Responder()
        defer { responder.stop() }
        let pebble = try PebbleProcess(httpPort: responder.port, tlsPort: try PebbleProcess.freePort())
        defer { pebble.kill() }
        let acme = try client(pebble)
        let issued: IssuedCertificate
        do {
            issued = try acme.issue(domains: ["a.tollgate.test", "b.tollgate.test"], email: "ops@tollgate.test",
                                    responder: responder)
        } catch {
            Issue.record("issuance failed: \(error)\n\(pebble.log)")
            return
        }
        #expect(responder.served.load(ordering: .relaxed) >= 2)
        // The chain verifies against Pebble's issuing root, for both names, and the key is the leaf's.
        let directory = pebble.directory
        try Data(issued.chain).write(to: URL(fileURLWithPath: directory + "/chain.pem"))
        try Data(issued.key).write(to: URL(fileURLWithPath: directory + "/key.pem"))
        try Data(try pebble.issuingRoot()).write(to: URL(fileURLWithPath: directory + "/root.pem"))
        let certificate = try TLSCertificate(certificatePath: directory + "/chain.pem", keyPath: directory + "/key.pem")
        #expect(certificate.notAfter > Int64(time(nil)))
        let verify = try #require(ChildProcess.run(["openssl", "verify", "-CAfile", directory + "/root.pem",
                                                    "-untrusted", directory + "/chain.pem", directory + "/chain.pem"]))
        #expect(verify.status == 0, "\(verify.text)")
        let text = try #require(ChildProcess.run(["openssl", "x509", "-in", directory + "/chain.pem", "-noout", "-ext", "subjectAltName"]))
        #expect(text.text.contains("DNS:a.tollgate.test"))
        #expect(text.text.contains("DNS:b.tollgate.test"))
    }

    /// Answers TLS-ALPN-01 the way the TLS listener does: a server `TLSContext` (whose client-hello callback serves
    /// `TLSALPNChallenges`) on a blocking socket of the test's own, one handshake at a time.
    final class TLSALPN01Responder: ChallengeResponder, @unchecked Sendable {
        let challengeTypes = ["tls-alpn-01"]
        let port: UInt16
        private let listener: Int32
        let answered = Atomic<Int>(0)

        init(directory: String) throws {
            port = try PebbleProcess.freePort()
            listener = try Socket.listen(on: SocketAddress(parsing: "127.0.0.1:\(port)")!, reusePort: false)
            Syscall.setBlocking(listener)
            try DevelopmentCertificate.generate(keyPath: directory + "/served-key.pem",
                                                certificatePath: directory + "/served-cert.pem",
                                                commonName: "served", subjectAltNames: "DNS:served.tollgate.test")
            let held = Held(try TLSContext(certificate: TLSCertificate(certificatePath: directory + "/served-cert.pem",
                                                                        keyPath: directory + "/served-key.pem"),
                                            library: TLSLibrary(), answersACMEChallenges: true))
            let thread = Thread { [self] in
                serve(held.take())
                ended.signal()
            }
            thread.start()
        }

        /// Signalled when the serving thread has returned (and let go of its TLS context).
        private let ended = DispatchSemaphore(value: 0)

        /// Stops accepting and waits for the serving thread: a handshake still running when the test process exits
        /// would use OpenSSL after its exit-time cleanup.
        func stop() {
            Socket.shutdownBoth(listener)
            ended.wait()
            Syscall.close(listener)
        }

        func present(_ answer: ChallengeAnswer) {
            if case .tlsALPN01(let domain, let certificate, let key) = answer {
                TLSALPNChallenges.set(domain: domain, certificate: certificate, key: key)
            }
        }

        func withdraw(_ answer: ChallengeAnswer) {
            if case .tlsALPN01(let domain, _, _) = answer { TLSALPNChallenges.remove(domain: domain) }
        }

        /// The context, handed to the thread once: freed by the thread before it signals its end.
        final class Held: @unchecked Sendable {
            private var tls: TLSContext?
            init(_ tls: TLSContext) { self.tls = tls }
            func take() -> TLSContext {
                defer { tls = nil }
                return tls!
            }
        }

        private func serve(_ tls: consuming TLSContext) {
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 { if errno == EINTR { continue } else { return } }
                ACMEPebbleTests.limitWaits(fd)
                if let session = tls.makeSession(fd: fd) {
                    if case .bytes = session.handshake(), session.answeredACMEChallenge {
                        answered.add(1, ordering: .relaxed)
                    }
                    session.free()
                }
                Syscall.close(fd)
            }
        }
    }

    @Test func issuesWithTLSALPN01() throws {
        let pebble0 = FileManager.default.temporaryDirectory.path + "/alpn-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: pebble0, withIntermediateDirectories: true)
        let responder = try TLSALPN01Responder(directory: pebble0)
        defer { responder.stop() }
        let pebble = try PebbleProcess(httpPort: try PebbleProcess.freePort(), tlsPort: responder.port)
        defer { pebble.kill() }
        let acme = try client(pebble)
        do {
            let issued = try acme.issue(domains: ["d.tollgate.test"], email: nil, responder: responder)
            #expect(String(decoding: issued.chain, as: UTF8.self).contains("BEGIN CERTIFICATE"))
        } catch {
            Issue.record("issuance failed: \(error)\n\(pebble.log)")
        }
        #expect(responder.answered.load(ordering: .relaxed) >= 1)
    }

    @Test func aFailedChallengeCarriesTheCAsProblem() throws {
        // A responder that answers nothing: Pebble's validation fails and the authorization becomes invalid.
        let responder = try HTTP01Responder()
        defer { responder.stop() }
        final class Silent: ChallengeResponder {
            let challengeTypes = ["http-01"]
            func present(_ answer: ChallengeAnswer) {}
            func withdraw(_ answer: ChallengeAnswer) {}
        }
        let pebble = try PebbleProcess(httpPort: responder.port, tlsPort: try PebbleProcess.freePort())
        defer { pebble.kill() }
        let acme = try client(pebble)
        do {
            _ = try acme.issue(domains: ["c.tollgate.test"], email: nil, responder: Silent())
            Issue.record("issued without an answered challenge")
        } catch {
            #expect(error.description.contains("c.tollgate.test"))
            #expect(error.type?.hasPrefix("urn:ietf:params:acme:error:") == true, "\(error)")
        }
    }

    @Test func badNonceFromPebbleIsRetried() throws {
        // Pebble refuses every nonce: each request is sent twice (once with the error's nonce), then fails as badNonce.
        let pebble = try PebbleProcess(httpPort: try PebbleProcess.freePort(), tlsPort: try PebbleProcess.freePort(),
                                       nonceReject: 100)
        defer { pebble.kill() }
        let acme = try client(pebble)
        do {
            try acme.register(email: nil)
            Issue.record("registered although every nonce is refused")
        } catch {
            #expect(error.isBadNonce, "\(error)")
        }
    }

    @Test func theCAUnreachableIsAnError() throws {
        let port = try PebbleProcess.freePort()
        let http = ACMEHTTPClient(tls: try TLSClient(extraRootFile: nil), timeoutMillis: 10_000)
        let acme = ACMEClient(directoryURL: "https://127.0.0.1:\(port)/dir", transport: http,
                              key: AccountKey(P256Key())) { _ in }
        #expect(throws: ACMEError.self) { try acme.loadDirectory() }
        do { try acme.loadDirectory() } catch { #expect(error.description.contains("cannot reach the CA")) }
    }

    @Test func anUntrustedCAIsRefused() throws {
        let pebble = try PebbleProcess(httpPort: try PebbleProcess.freePort(), tlsPort: try PebbleProcess.freePort())
        defer { pebble.kill() }
        let http = ACMEHTTPClient(tls: try TLSClient(extraRootFile: nil), timeoutMillis: 10_000)
        let acme = ACMEClient(directoryURL: pebble.directoryURL, transport: http, key: AccountKey(P256Key())) { _ in }
        do {
            try acme.loadDirectory()
            Issue.record("trusted a CA outside the system store")
        } catch {
            #expect(error.description.contains("certificate verify failed"), "\(error)")
        }
    }
}
