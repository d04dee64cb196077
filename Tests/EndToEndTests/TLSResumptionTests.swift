import COpenSSL
import Testing
import TollgateIO

/// Session resumption across workers, certificate reloads and ticket-key rotation: every worker builds its own TLS
/// context, so a ticket must be sealed with keys the whole process shares.
@Suite(.serialized) struct TLSResumptionTests {
    /// A first connection's session, after reading one answer (TLS 1.3 tickets arrive after the handshake).
    private func firstSession(_ proxy: Proxy, version: Int32) throws -> TLSClientSession {
        let first = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(maxVersion: version))
        defer { first.close() }
        #expect(!first.sessionReused)
        try checkVersionRequest(HTTPClient(first))
        return try #require(first.session())
    }

    private func checkVersionRequest(_ client: HTTPClient) throws {
        try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(try client.readResponse().status == 200)
    }

    /// Whether a connection offering `session` resumed it (and still serves).
    private func resumes(_ proxy: Proxy, _ session: TLSClientSession, version: Int32) throws -> Bool {
        let stream = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(maxVersion: version, session: session))
        defer { stream.close() }
        try checkVersionRequest(HTTPClient(stream))
        return stream.sessionReused
    }

    /// `attempt`'s result, taken again (three times at most) while the process's ticket keys changed during it: the
    /// keys are the process's, and a suite running beside this one that swaps in another certificate retires them
    /// (as a server must). Only an attempt during which they stayed the same says whether tickets resume.
    private func withSteadyTicketKeys<T>(_ attempt: () throws -> T) rethrows -> T {
        var tries = 0
        while true {
            let before = TLSTicketKeys.generation
            let result = try attempt()
            tries += 1
            if TLSTicketKeys.generation == before || tries == 3 { return result }
        }
    }

    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func aTicketResumesOnEveryWorker(version: Int32) throws {
        // The kernel spreads connections over the workers' SO_REUSEPORT sockets: with per-worker keys, about half
        // of 24 reconnections would land on a worker that cannot open the ticket.
        try withProxyAndFake(configure: { $0.workers = 2 }) { proxy, _ in
            let resumed = try withSteadyTicketKeys { () throws -> Int in
                let session = try firstSession(proxy, version: version)
                var resumed = 0
                for _ in 0..<24 where try resumes(proxy, session, version: version) { resumed += 1 }
                return resumed
            }
            #expect(resumed == 24)
        }
    }

    @Test func aResumedTLS13ConnectionGetsAFreshTicket() throws {
        try withProxyAndFake(configure: { $0.workers = 2 }) { proxy, _ in
            let (reused, tickets) = try withSteadyTicketKeys { () throws -> (Int, Set<[UInt8]>) in
                var session = try firstSession(proxy, version: TLS1_3_VERSION)
                var tickets: Set<[UInt8]> = [ticket(of: session)]
                var reused = 0
                // A client that uses each ticket once resumes every time, on either worker.
                for _ in 0..<8 {
                    let stream = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(session: session))
                    defer { stream.close() }
                    if stream.sessionReused { reused += 1 }
                    try checkVersionRequest(HTTPClient(stream))
                    session = try #require(stream.session())
                    tickets.insert(ticket(of: session))
                }
                return (reused, tickets)
            }
            #expect(reused == 8)
            #expect(tickets.count == 9)
        }
    }

    private func ticket(of session: TLSClientSession) -> [UInt8] {
        var bytes: UnsafePointer<UInt8>?
        var length = 0
        SSL_SESSION_get0_ticket(session.pointer, &bytes, &length)
        return bytes.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
    }

    @Test func aTicketStillResumesAfterTheCertificateIsReloaded() throws {
        try withProxyAndFake { proxy, _ in
            let session = try firstSession(proxy, version: TLS1_3_VERSION)
            #expect(proxy.server.reloadCertificate())
            // The reload is applied on the loop; a new context is in place once a request has gone through.
            try checkVersionRequest(try proxy.tls())
            #expect(try resumes(proxy, session, version: TLS1_3_VERSION))
        }
    }

    @Test func aTicketSurvivesOneKeyRotationButNotTwo() throws {
        try withProxyAndFake { proxy, _ in
            let session = try firstSession(proxy, version: TLS1_3_VERSION)
            let before = TLSTicketKeys.generation
            TLSTicketKeys.rotate()
            #expect(TLSTicketKeys.generation == before + 1)
            #expect(try resumes(proxy, session, version: TLS1_3_VERSION))

            let second = try firstSession(proxy, version: TLS1_3_VERSION)
            TLSTicketKeys.rotate()
            TLSTicketKeys.rotate()
            #expect(try !resumes(proxy, second, version: TLS1_3_VERSION))
        }
    }

    /// A reload that brings a different certificate or key ends every session made with the old one: a client
    /// authenticates the new certificate before it resumes again.
    @Test func aTicketFromBeforeACertificateChangeDoesNotResume() throws {
        let shared = TestCertificates.shared
        let dir = try OpsTempDirectory()
        let cert = dir.file("leaf.pem"), key = dir.file("leaf-key.pem")
        try OpsFiles.install(shared.certificatePath, as: cert)
        try OpsFiles.install(shared.keyPath, as: key)
        try withProxyAndFake(configure: { $0.certificatePath = cert; $0.keyPath = key }) { proxy, _ in
            let session = try firstSession(proxy, version: TLS1_3_VERSION)
            try DevelopmentCertificate.generate(keyPath: key, certificatePath: cert, commonName: "localhost",
                                                subjectAltNames: "DNS:localhost,IP:127.0.0.1", days: 2,
                                                caKeyPath: shared.caKeyPath,
                                                caCertificatePath: shared.caCertificatePath)
            #expect(proxy.server.reloadCertificate())
            try checkVersionRequest(try proxy.tls())
            #expect(try !resumes(proxy, session, version: TLS1_3_VERSION))
            // Sessions made with the new certificate resume as before.
            let fresh = try firstSession(proxy, version: TLS1_3_VERSION)
            #expect(try resumes(proxy, fresh, version: TLS1_3_VERSION))
        }
    }

    /// A resumed TLS 1.3 session gets a fresh ticket, but the chain of resumptions ends a day after the full
    /// handshake that began it (the clock the ticket keys use is moved forward, not waited for).
    @Test func chainedResumptionsEndADayAfterTheFullHandshake() throws {
        try withProxyAndFake { proxy, _ in
            // Keys that outlive the test's two days, so only the session's age decides.
            TLSTicketKeys.setPeriod(seconds: 30 * 86_400)
            TLSTicketKeys.rotate()
            defer {
                TLSTicketKeys.setPeriod(seconds: TLSTicketKeys.periodSeconds)
                TLSTicketKeys.rotate()
            }
            var session = try firstSession(proxy, version: TLS1_3_VERSION)
            for _ in 0..<4 {
                TLSTicketKeys.advanceClock(seconds: 5 * 3600)
                let stream = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(maxVersion: TLS1_3_VERSION, session: session))
                defer { stream.close() }
                try checkVersionRequest(HTTPClient(stream))
                #expect(stream.sessionReused, "within a day of the full handshake")
                session = try #require(stream.session())
            }
            // 20 h so far; 5 h more passes the day, though the newest ticket is only 5 h old.
            TLSTicketKeys.advanceClock(seconds: 5 * 3600)
            #expect(try !resumes(proxy, session, version: TLS1_3_VERSION))
            let fresh = try firstSession(proxy, version: TLS1_3_VERSION)
            #expect(try resumes(proxy, fresh, version: TLS1_3_VERSION))
        }
    }
}
