import FakeOllama
import Foundation
import Glibc
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

/// `tollgate serve` with `acme-domain`, end to end against Debian's Pebble on loopback: the server starts on a
/// self-signed certificate for the name, its ACME thread orders one (TLS-ALPN-01 answered by the TLS listener
/// itself, or HTTP-01 by the redirect listener), stores it and swaps it in on the running listener; clients then
/// verify the served chain against Pebble's root. Renewal comes at a third of the lifetime left (the thread's clock
/// is driven by the test) while a stream is in flight, the stream completes and new connections get the new
/// certificate; a restart on the stored certificate orders nothing; an unreachable CA keeps the served certificate
/// and retries, counted in `tollgate_acme_failures_total`. Skipped, saying why, without pebble (.ci/run installs it).
@Suite(.serialized, .enabled(if: PebbleProcess.available, "pebble is not installed (apt-get install pebble)"))
struct ACMEServeTests {
    static let domain = "a.tollgate.test"

    /// A store in a new temporary state directory, holding the self-signed certificate serve starts with.
    static func store() throws -> ACMEStore {
        let state = FileManager.default.temporaryDirectory.path + "/tollgate-acme-\(UUID().uuidString)"
        let store = ACMEStore(directory: ACMEStore.directory(inStateDirectory: state))
        try store.prepare()
        try store.ensureSelfSigned(domains: [domain])
        return store
    }

    /// Runs a server as `serve` runs it with ACME on (`listen` on `tlsPort`, starting on `certificate`/`key`),
    /// its ACME thread on `clock`; `body` gets it; stopped afterwards.
    static func withACMEServer(store: ACMEStore, ca: String, caRoot: String?, tlsPort: UInt16,
                               redirectPort: UInt16? = nil, certificate: String? = nil, key: String? = nil,
                               clock: ManualACMEClock, upstream: FakeOllamaServer,
                               _ body: (Proxy) throws -> Void) throws {
        var config = ServerConfig()
        config.listen = [SocketAddress(parsing: "127.0.0.1:\(tlsPort)")!]
        if let redirectPort { config.listenRedirect = [SocketAddress(parsing: "127.0.0.1:\(redirectPort)")!] }
        config.certificatePath = certificate ?? store.selfSignedPath
        config.keyPath = key ?? store.selfSignedKeyPath
        config.acmeDomains = [domain]
        config.acmeEmail = "ops@tollgate.test"
        config.acmeCA = ca
        config.acmeCARoot = caRoot
        config.acmeDirectory = store.directory
        config.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
        config.workers = 2
        config.accessLog = .none
        config.metricsListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        config.rateLimit = nil
        let server = try Server(config: config)
        server.acmeClock = clock
        server.start()
        defer { stop(server) }
        try body(Proxy(server: server, upstream: upstream, tlsPort: tlsPort, plainPort: nil,
                       redirectPort: server.redirectAddresses.first?.port))
    }

    /// Polls `condition` every 20 ms until it holds; false after `attempts` tries (a wait for an event, generous
    /// on a shared machine, never a bound on how fast anything is).
    static func waitFor(attempts: Int = 3_000, _ condition: () throws -> Bool) rethrows -> Bool {
        for _ in 0..<attempts {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    /// Pebble's issuing root, written to a file for clients to verify against.
    static func rootFile(_ pebble: PebbleProcess) throws -> String {
        let path = pebble.directory + "/issuing-root.pem"
        try Data(try pebble.issuingRoot()).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A connection to the proxy for `domain`, verified against `root`.
    static func verified(_ proxy: Proxy, root: String) throws -> TLSStream {
        var options = TLSClientOptions()
        options.hostname = domain
        options.caFile = root
        return try TLSStream(port: proxy.tlsPort, options: options)
    }

    /// The first certificate's SHA-256 in a PEM file (the leaf of a stored chain).
    static func fingerprint(_ path: String) -> String { OpsCertificates.fingerprint(ofPEMFile: path) }

    static func mode(_ path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o777 : 0
    }

    /// Issuance with TLS-ALPN-01 on the TLS listener (Pebble's HTTP-01 port has no listener: only TLS-ALPN-01 can
    /// succeed): the issued chain is stored privately and served, verified against Pebble's root; the thread then
    /// sleeps until a third of the lifetime is left.
    @Test func issuesWithTLSALPN01AndServesIt() throws {
        let store = try Self.store()
        let tlsPort = try PebbleProcess.freePort()
        let pebble = try PebbleProcess(httpPort: try PebbleProcess.freePort(), tlsPort: tlsPort)
        defer { pebble.kill() }
        let fake = try FakeOllamaHarness.start(tokens: 5)
        defer { fake.stop() }
        let clock = ManualACMEClock()
        try Self.withACMEServer(store: store, ca: pebble.directoryURL, caRoot: pebble.serverRootFile,
                                tlsPort: tlsPort, clock: clock, upstream: fake) { proxy in
            let acme = try #require(proxy.server.acme)
            #expect(Self.waitFor { acme.issuedCount.load(ordering: .relaxed) == 1 || acme.consecutiveFailures.load(ordering: .relaxed) > 0 },
                    "no certificate: \(pebble.log)")
            #expect(acme.issuedCount.load(ordering: .relaxed) == 1, "\(pebble.log)")

            let root = try Self.rootFile(pebble)
            let client = HTTPClient(try Self.verified(proxy, root: root))
            defer { client.close() }
            #expect(try client.exchange(Req.get("/api/version")).status == 200)
            // An ordinary handshake still negotiates http/1.1 (the ACME callback answers only acme-tls/1).
            #expect(try Self.verified(proxy, root: root).alpnProtocol == "http/1.1")

            #expect(Self.mode(store.directory) == 0o700)
            for file in [store.chainPath, store.keyPath, store.accountKeyPath] { #expect(Self.mode(file) == 0o600, "\(file)") }
            let stored = try #require(try store.issued())
            #expect(stored.domains == [Self.domain])
            #expect(Self.waitFor { acme.nextAttempt.load(ordering: .relaxed) == stored.renewalDue },
                    "the thread sleeps until a third of the lifetime is left")
            let scrape = try MetricsScrape(proxy)
            #expect(scrape.samples["tollgate_acme_failures_total"] == 0)
            #expect(scrape["tollgate_certificate_expiry_timestamp_seconds"] == Double(stored.certificate.notAfter))
        }
    }

    /// With a redirect listener on the port Pebble validates HTTP-01 on, that challenge is answered there (Pebble's
    /// TLS-ALPN-01 port has no listener: only HTTP-01 can succeed).
    @Test func issuesWithHTTP01OnTheRedirectListener() throws {
        let store = try Self.store()
        let tlsPort = try PebbleProcess.freePort()
        let redirectPort = try PebbleProcess.freePort()
        let pebble = try PebbleProcess(httpPort: redirectPort, tlsPort: try PebbleProcess.freePort())
        defer { pebble.kill() }
        let fake = try FakeOllamaHarness.start(tokens: 5)
        defer { fake.stop() }
        try Self.withACMEServer(store: store, ca: pebble.directoryURL, caRoot: pebble.serverRootFile,
                                tlsPort: tlsPort, redirectPort: redirectPort, clock: ManualACMEClock(),
                                upstream: fake) { proxy in
            let acme = try #require(proxy.server.acme)
            #expect(Self.waitFor { acme.issuedCount.load(ordering: .relaxed) == 1 || acme.consecutiveFailures.load(ordering: .relaxed) > 0 },
                    "no certificate: \(pebble.log)")
            #expect(acme.issuedCount.load(ordering: .relaxed) == 1, "\(pebble.log)")
            let client = HTTPClient(try Self.verified(proxy, root: try Self.rootFile(pebble)))
            defer { client.close() }
            #expect(try client.exchange(Req.get("/api/version")).status == 200)
            // Once validated, a token is no longer answered; other paths are redirected as before.
            let redirect = try proxy.redirect()
            defer { redirect.close() }
            #expect(try redirect.exchange(Req.get("/.well-known/acme-challenge/unknown-token")).status == 404)
            let other = try proxy.redirect()
            defer { other.close() }
            #expect(try other.exchange(Req.get("/api/tags")).status == 301)
        }
    }

    /// Renewal while a stream is in flight: the thread's clock reaches a third of the lifetime left, a new
    /// certificate is ordered and swapped in; the stream opened under the old one runs to its last line, and new
    /// connections get the new one. Then a restart on the stored certificate orders nothing.
    @Test func renewsWhileAStreamIsInFlightAndARestartOrdersNothing() throws {
        let store = try Self.store()
        let tlsPort = try PebbleProcess.freePort()
        let pebble = try PebbleProcess(httpPort: try PebbleProcess.freePort(), tlsPort: tlsPort,
                                       validitySeconds: 3_600)
        defer { pebble.kill() }
        let fake = try FakeOllamaHarness.start(tokens: 5)
        defer { fake.stop() }
        let clock = ManualACMEClock()
        try Self.withACMEServer(store: store, ca: pebble.directoryURL, caRoot: pebble.serverRootFile,
                                tlsPort: tlsPort, clock: clock, upstream: fake) { proxy in
            let acme = try #require(proxy.server.acme)
            try #require(Self.waitFor { acme.issuedCount.load(ordering: .relaxed) == 1 }, "\(pebble.log)")
            let first = try #require(try store.issued())
            let firstPrint = Self.fingerprint(store.chainPath)
            try #require(Self.waitFor { acme.nextAttempt.load(ordering: .relaxed) == first.renewalDue })
            let root = try Self.rootFile(pebble)

            let before = try Self.verified(proxy, root: root)
            #expect(before.peerFingerprint == firstPrint)
            let streaming = HTTPClient(before)
            defer { streaming.close() }
            fake.stepMode = true
            defer { fake.stepMode = false }
            try streaming.send(Req.generate())
            fake.allowLines(1)
            #expect(try streaming.readHead().status == 200)
            #expect(try streaming.readLine()?.contains(#""done":false"#) == true)

            clock.advance(to: first.renewalDue)
            try #require(Self.waitFor { acme.issuedCount.load(ordering: .relaxed) == 2 }, "\(pebble.log)")
            let secondPrint = Self.fingerprint(store.chainPath)
            #expect(secondPrint != firstPrint)
            let after = try Self.verified(proxy, root: root)
            #expect(after.peerFingerprint == secondPrint)
            let fresh = HTTPClient(after)
            defer { fresh.close() }
            #expect(try fresh.exchange(Req.get("/api/version")).status == 200)

            var lines = 1
            while true {
                fake.allowLines(1)
                guard let line = try streaming.readLine() else { break }
                lines += 1
                try #require(lines <= 6, "no final line")
                if line.contains(#""done":true"#) { break }
            }
            #expect(lines == 6, "the stream under the old certificate ran to its end")
            #expect(try streaming.readChunk().data == nil)
            fake.stepMode = false
            #expect(try streaming.exchange(Req.get("/api/version")).status == 200)
        }

        // A restart: serve starts on the stored pair (Startup), and the thread plans the renewal, not an order.
        let stored = try #require(try store.issued())
        let restartClock = ManualACMEClock()   // now: the renewed certificate has two thirds of its hour left
        try Self.withACMEServer(store: store, ca: pebble.directoryURL, caRoot: pebble.serverRootFile,
                                tlsPort: tlsPort, certificate: store.chainPath, key: store.keyPath,
                                clock: restartClock, upstream: fake) { proxy in
            let acme = try #require(proxy.server.acme)
            #expect(Self.waitFor { acme.nextAttempt.load(ordering: .relaxed) != 0 })
            #expect(acme.nextAttempt.load(ordering: .relaxed) == stored.renewalDue)
            #expect(acme.attempts.load(ordering: .relaxed) == 0, "nothing ordered at restart")
            let client = try Self.verified(proxy, root: try Self.rootFile(pebble))
            #expect(client.peerFingerprint == Self.fingerprint(store.chainPath))
            client.close()
        }
    }

    /// The CA unreachable: the served certificate stays, the failure is counted and logged, and the thread tries
    /// again after its backoff (the clock moved past it), counting again.
    @Test func anUnreachableCAKeepsTheCertificateAndRetries() throws {
        let store = try Self.store()
        let tlsPort = try PebbleProcess.freePort()
        let closed = try PebbleProcess.freePort()
        let fake = try FakeOllamaHarness.start(tokens: 5)
        defer { fake.stop() }
        let clock = ManualACMEClock()
        try Self.withACMEServer(store: store, ca: "https://127.0.0.1:\(closed)/dir", caRoot: nil, tlsPort: tlsPort,
                                clock: clock, upstream: fake) { proxy in
            let acme = try #require(proxy.server.acme)
            #expect(Self.waitFor { acme.consecutiveFailures.load(ordering: .relaxed) == 1
                                   && acme.nextAttempt.load(ordering: .relaxed) > clock.now() })
            let retry = acme.nextAttempt.load(ordering: .relaxed)
            #expect(retry - clock.now() >= 30 && retry - clock.now() <= 60, "the first retry within a minute")
            #expect(try MetricsScrape(proxy)["tollgate_acme_failures_total"] == 1)
            #expect(try store.issued() == nil)
            // The self-signed certificate is still served.
            var unverified = TLSClientOptions()
            unverified.verifies = false
            unverified.hostname = Self.domain
            let stream = try TLSStream(port: tlsPort, options: unverified)
            #expect(stream.peerFingerprint == Self.fingerprint(store.selfSignedPath))
            stream.close()

            clock.advance(to: retry)
            #expect(Self.waitFor { acme.consecutiveFailures.load(ordering: .relaxed) == 2
                                   && acme.nextAttempt.load(ordering: .relaxed) > retry })
            #expect(try MetricsScrape(proxy)["tollgate_acme_failures_total"] == 2)
            #expect(acme.issuedCount.load(ordering: .relaxed) == 0)
        }
    }
}
