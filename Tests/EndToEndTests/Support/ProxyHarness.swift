import Dispatch
import FakeOllama
import Testing
import Tollgate
import TollgateIO

/// A running proxy in a test: its ports and ways to talk to it.
struct Proxy {
    let server: Server
    /// The upstream it fronts.
    let upstream: FakeOllamaServer
    let tlsPort: UInt16
    let plainPort: UInt16?
    let redirectPort: UInt16?

    /// A new TLS connection (verified against the test CA), wrapped in an HTTP client.
    func tls(_ options: TLSClientOptions = TLSClientOptions()) throws -> HTTPClient {
        HTTPClient(try TLSStream(port: tlsPort, options: options))
    }

    /// A new connection to the plain-HTTP listener.
    func plain() throws -> HTTPClient {
        HTTPClient(try PlainStream(port: try #require(plainPort)))
    }

    /// A new connection to the redirect listener.
    func redirect() throws -> HTTPClient {
        HTTPClient(try PlainStream(port: try #require(redirectPort)))
    }

    /// The upstream's Host value, "127.0.0.1:PORT".
    var upstreamHost: String { "127.0.0.1:\(upstream.port)" }
}

/// Seconds the harness waits for the server to stop before failing the test instead of hanging it.
let stopTimeoutSeconds = 40.0

/// Starts a Server with the settings `tollgate serve` ships with (`ServerConfig()`), except for what a test needs:
/// one worker, TLS and plain listeners on 127.0.0.1:0 with the test certificate, `upstream` as its upstream, no
/// access log and no metrics listener. Runs `body`, then shuts it down (grace 0) and waits for it to stop — a stop
/// that never comes fails the test. `configure` runs last, so it may override anything, the upstream address
/// included.
func withProxy(configure: (inout ServerConfig) -> Void = { _ in }, upstream: FakeOllamaServer,
               keyStore: (any KeyStore)? = nil, body: (Proxy) throws -> Void) throws {
    let certificates = TestCertificates.shared
    var config = ServerConfig()
    config.listen = [SocketAddress(parsing: "127.0.0.1:0")!]
    config.listenPlain = [SocketAddress(parsing: "127.0.0.1:0")!]
    config.certificatePath = certificates.certificatePath
    config.keyPath = certificates.keyPath
    config.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(upstream.port)")!
    config.workers = 1
    config.accessLog = .none
    // Tests that scrape metrics listen on 127.0.0.1:0; the shipped 127.0.0.1:9091 is one port for every test.
    config.metricsListen = []
    // Every test client is 127.0.0.1, and many tests send more than the shipped burst (20) at once; the rate
    // limit's own tests turn it on.
    config.rateLimit = nil
    configure(&config)
    let server = try Server(config: config, keyStore: keyStore)
    server.start()
    let proxy = Proxy(server: server, upstream: upstream, tlsPort: server.tlsAddresses.first?.port ?? 0,
                      plainPort: server.plainAddresses.first?.port, redirectPort: server.redirectAddresses.first?.port)
    defer { stop(server) }
    try body(proxy)
}

/// Starts a fake Ollama on 127.0.0.1:0 and a proxy in front of it; stops both afterwards.
/// `keyStore`: the API keys the server loads at start.
func withProxyAndFake(tokens: Int = 5, keyStore: (any KeyStore)? = nil, configure: (inout ServerConfig) -> Void = { _ in },
                      body: (Proxy, FakeOllamaServer) throws -> Void) throws {
    let fake = try FakeOllamaHarness.start(tokens: tokens)
    defer { fake.stop() }
    try withProxy(configure: configure, upstream: fake, keyStore: keyStore) { proxy in try body(proxy, fake) }
}

/// A proxy in front of a test upstream listening on 127.0.0.1:`port` instead of the fake Ollama, writing a JSON access
/// log into a temporary directory; `configure` runs after those settings. `body` gets the log's path.
func withProxyLoggingJSON(upstreamPort port: UInt16, configure: (inout ServerConfig) -> Void = { _ in },
                          body: (Proxy, String) throws -> Void) throws {
    let dir = try OpsTempDirectory()
    let log = dir.file("access.log")
    try withProxyAndFake(configure: { config in
        config.upstream = UpstreamAddress(parsing: "http://127.0.0.1:\(port)")!
        config.accessLog = .json
        config.accessLogPath = log
        configure(&config)
    }) { proxy, _ in try body(proxy, log) }
}

/// Asks the server to stop at once and waits, bounded, for its loops to exit.
func stop(_ server: Server) {
    server.shutdown(graceSeconds: 0)
    #expect(waitUntilStopped(server, timeoutSeconds: stopTimeoutSeconds), "the server did not stop")
}

/// Waits for the server's loops to exit, on another thread; false if that takes longer than `timeoutSeconds`
/// (the waiting thread is then left behind rather than hanging the suite).
func waitUntilStopped(_ server: Server, timeoutSeconds: Double) -> Bool {
    let done = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        server.waitUntilStopped()
        done.signal()
    }
    return done.wait(timeout: .now() + timeoutSeconds) == .success
}

/// Bytes of a string, for comparisons with what crossed the wire.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Seconds tests wait for an event that should come promptly (generous: the machine is shared).
let eventTimeout = 10.0

extension Proxy {
    /// Sends a GET /api/version on a fresh connection and checks it is the only request that reached the
    /// upstream since `before` requests: whatever a refused request carried never arrived.
    func expectOnlySentinelArrived(after before: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let client = try tls()
        defer { client.close() }
        try client.send("GET /api/version?sentinel HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(try client.readResponse().status == 200, sourceLocation: sourceLocation)
        let arrived = upstream.requests.dropFirst(before).map(\.target)
        #expect(arrived == ["/api/version?sentinel"], "reached the upstream: \(arrived)", sourceLocation: sourceLocation)
    }
}

/// Starting a bare fake Ollama for tests that build their proxy with `withProxy`.
enum FakeOllamaHarness {
    /// A started fake Ollama on 127.0.0.1:0; the caller stops it.
    static func start(tokens: Int = 5) throws -> FakeOllamaServer {
        let fake = try FakeOllamaServer(config: FakeOllamaConfig(port: 0, tokens: tokens, intervalMs: 0))
        fake.start()
        return fake
    }
}
