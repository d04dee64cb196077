import COpenSSL
import Testing
@testable import TollgateIO

/// Session resumption across workers, certificate reloads, expiry and a full cache: every worker builds its own TLS
/// context, so the session cache is the whole process's.
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

    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func secondConnectionResumesTheSession(version: Int32) throws {
        try withProxyAndFake { proxy, _ in
            let resumed = try withSteadyCache { () throws -> Bool in
                let session = try firstSession(proxy, version: version)
                return try resumes(proxy, session, version: version)
            }
            #expect(resumed)
        }
    }

    /// `tollgate_tls_resumed_total` counts the connections that resumed, and only those.
    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func resumedHandshakesAreCounted(version: Int32) throws {
        try withProxyAndFake(configure: { $0.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!] }) { proxy, _ in
            let before = try MetricsScrape(proxy)
            #expect(before["tollgate_tls_resumed_total"] == 0)
            let session = try firstSession(proxy, version: version)
            var resumed = 0
            for _ in 0..<3 where try resumes(proxy, session, version: version) { resumed += 1 }
            let fresh = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(maxVersion: version))
            try checkVersionRequest(HTTPClient(fresh))
            #expect(!fresh.sessionReused)
            fresh.close()
            // Resumptions depend on the process's cache, which a suite running beside this one may empty.
            #expect(resumed > 0)
            let after = try MetricsScrape(proxy)
            #expect(after["tollgate_tls_resumed_total"] == Double(resumed))
            #expect(after["tollgate_tls_handshakes_total{result=\"ok\"}"] == 5)
        }
    }

    /// `tls-session-cache = 0`: no session is kept, every connection makes a full handshake. (The size is the
    /// process's; only this suite changes it, and puts the default back.)
    @Test func aCacheOfNoBytesResumesNothing() throws {
        defer { TLSSessionCache.setBytes(TLSSessionCache.defaultBytes) }
        try withProxyAndFake(configure: { $0.tlsSessionCacheBytes = 0 }) { proxy, _ in
            #expect(TLSSessionCache.bytes == 0)
            let session = try firstSession(proxy, version: TLS1_3_VERSION)
            #expect(try !resumes(proxy, session, version: TLS1_3_VERSION))
        }
    }

    /// The server sets the process's cache to `tls-session-cache` when it starts; one with the default setting
    /// leaves the size as it is.
    @Test func theServerSizesTheCacheFromItsSetting() throws {
        defer { TLSSessionCache.setBytes(TLSSessionCache.defaultBytes) }
        try withProxyAndFake(configure: { $0.tlsSessionCacheBytes = 123_456 }) { _, _ in
            #expect(TLSSessionCache.bytes == 123_456)
            try withProxyAndFake { _, _ in #expect(TLSSessionCache.bytes == 123_456) }
        }
    }

    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func aTicketResumesOnEveryWorker(version: Int32) throws {
        // The kernel spreads connections over the workers' SO_REUSEPORT sockets: with a cache per worker, about half
        // of 24 reconnections would land on a worker that does not know the session.
        try withProxyAndFake(configure: { $0.workers = 2 }) { proxy, _ in
            let resumed = try withSteadyCache { () throws -> Int in
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
            let (reused, tickets) = try withSteadyCache { () throws -> (Int, Set<[UInt8]>) in
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

    /// A session resumes for two hours after it was issued (the lifetime TLS 1.3 clients are told), not longer.
    @Test func aSessionEndsTwoHoursAfterItWasIssued() throws {
        try withProxyAndFake { proxy, _ in
            let (before, after) = try withSteadyCache { () throws -> (Bool, Bool) in
                let session = try firstSession(proxy, version: TLS1_2_VERSION)
                TLSSessionCache.advanceClock(seconds: 7000)
                let before = try resumes(proxy, session, version: TLS1_2_VERSION)
                TLSSessionCache.advanceClock(seconds: 201)
                return (before, try resumes(proxy, session, version: TLS1_2_VERSION))
            }
            #expect(before)
            #expect(!after)
        }
    }

    /// The cache holds what its size allows: a full one drops its least recently used sessions, and a session used
    /// again stays.
    @Test func aFullCacheDropsTheLeastRecentlyUsedSessions() throws {
        try withProxyAndFake { proxy, _ in
            defer { TLSSessionCache.setBytes(TLSSessionCache.defaultBytes) }
            // About two sessions in each of the cache's 16 shards.
            TLSSessionCache.setBytes(16 * 1024)
            let result = try withSteadyCache { try fillAndCheck(proxy) }
            #expect(!result.oldest, "the first session of 400 was dropped")
            #expect(result.kept, "a session in use stays")
            #expect(result.newest, "the newest session resumes")
            #expect(result.count <= 16 * 1024 / 200, "the cache stays within its size (\(result.count) sessions)")
        }
    }

    /// 200 new sessions, with one older session used again on every round; then which still resume.
    private func fillAndCheck(_ proxy: Proxy) throws -> (oldest: Bool, kept: Bool, newest: Bool, count: Int) {
        let first = try firstSession(proxy, version: TLS1_3_VERSION)
        var kept = try firstSession(proxy, version: TLS1_3_VERSION)
        var last = kept
        for _ in 0..<200 {
            last = try firstSession(proxy, version: TLS1_3_VERSION)
            // Used on every round: the newest session of its chain is always among the most recent.
            let stream = try TLSStream(port: proxy.tlsPort, options: TLSClientOptions(session: kept))
            defer { stream.close() }
            try checkVersionRequest(HTTPClient(stream))
            guard stream.sessionReused else { return (true, false, false, TLSSessionCache.count) }
            kept = try #require(stream.session())
        }
        return (try resumes(proxy, first, version: TLS1_3_VERSION), try resumes(proxy, kept, version: TLS1_3_VERSION),
                try resumes(proxy, last, version: TLS1_3_VERSION), TLSSessionCache.count)
    }

    /// One connection looks a few sessions up at most: a TLS 1.3 ClientHello may list one real ticket some 1,700
    /// times, and each lookup that finds it decodes the session. The cache's own lookup is called here as OpenSSL
    /// calls it for each identity, on one connection and then on a fresh one.
    @Test func aConnectionLooksUpEightSessionsAtMost() throws {
        try withProxyAndFake { proxy, _ in
            let session = try firstSession(proxy, version: TLS1_2_VERSION)
            var idLength: UInt32 = 0
            let idPointer = try #require(SSL_SESSION_get_id(session.pointer, &idLength))
            let id = Array(UnsafeBufferPointer(start: idPointer, count: Int(idLength)))
            let shared = TestCertificates.shared
            let context = try TLSContext(certificatePath: shared.certificatePath, keyPath: shared.keyPath)
            let lookUp = try #require(SSL_CTX_sess_get_get_cb(context.ctx))
            func found(on ssl: OpaquePointer) -> Int {
                var found = 0
                for _ in 0..<20 {
                    var copy: Int32 = 1
                    if let s = id.withUnsafeBufferPointer({ lookUp(ssl, $0.baseAddress, Int32($0.count), &copy) }) {
                        found += 1
                        SSL_SESSION_free(s)
                    }
                }
                return found
            }
            let (first, second) = try withSteadyCache { () throws -> (Int, Int) in
                let a = try #require(SSL_new(context.ctx))
                defer { SSL_free(a) }
                let b = try #require(SSL_new(context.ctx))
                defer { SSL_free(b) }
                return (found(on: a), found(on: b))
            }
            #expect(first == 8)
            #expect(second == 8)
        }
    }

    /// A session made with one certificate does not resume on a server with another, even in the same process
    /// and cache: sessions are bound to their certificate.
    @Test func aSessionDoesNotResumeUnderAnotherCertificate() throws {
        let shared = TestCertificates.shared
        let dir = try OpsTempDirectory()
        let cert = dir.file("other.pem"), key = dir.file("other-key.pem")
        try DevelopmentCertificate.generate(keyPath: key, certificatePath: cert, commonName: "localhost",
                                            subjectAltNames: "DNS:localhost,IP:127.0.0.1", days: 2,
                                            caKeyPath: shared.caKeyPath, caCertificatePath: shared.caCertificatePath)
        try withProxyAndFake { first, _ in
            try withProxyAndFake(configure: { $0.certificatePath = cert; $0.keyPath = key }) { other, _ in
                try withProxyAndFake { same, _ in
                    let (elsewhere, sameCertificate) = try withSteadyCache { () throws -> (Bool, Bool) in
                        let session = try firstSession(first, version: TLS1_3_VERSION)
                        return (try resumes(other, session, version: TLS1_3_VERSION),
                                try resumes(same, session, version: TLS1_3_VERSION))
                    }
                    #expect(!elsewhere)
                    #expect(sameCertificate, "a server with the same certificate shares the process's sessions")
                }
            }
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
    /// handshake that began it (the cache's clock is moved forward, not waited for).
    @Test func chainedResumptionsEndADayAfterTheFullHandshake() throws {
        try withProxyAndFake { proxy, _ in
            let (resumed, pastTheDay, fresh) = try withSteadyCache { () throws -> (Int, Bool, Bool) in
                var session = try firstSession(proxy, version: TLS1_3_VERSION)
                var resumed = 0
                // Each ticket is used within its two hours: 15 steps of 90 minutes are 22.5 hours.
                for _ in 0..<15 {
                    TLSSessionCache.advanceClock(seconds: 90 * 60)
                    let stream = try TLSStream(port: proxy.tlsPort,
                                               options: TLSClientOptions(maxVersion: TLS1_3_VERSION, session: session))
                    defer { stream.close() }
                    try checkVersionRequest(HTTPClient(stream))
                    if stream.sessionReused { resumed += 1 }
                    session = try #require(stream.session())
                }
                // 90 minutes more passes the day, though the newest ticket is only 90 minutes old.
                TLSSessionCache.advanceClock(seconds: 90 * 60)
                let pastTheDay = try resumes(proxy, session, version: TLS1_3_VERSION)
                let fresh = try firstSession(proxy, version: TLS1_3_VERSION)
                return (resumed, pastTheDay, try resumes(proxy, fresh, version: TLS1_3_VERSION))
            }
            #expect(resumed == 15, "within a day of the full handshake")
            #expect(!pastTheDay)
            #expect(fresh)
        }
    }
}
