import Dispatch
import FakeOllama
import Testing
import Tollgate
import TollgateIO

/// One fake backend for `withBackends`: its models, what it reports loaded, its `max=`.
struct FakeBackend {
    var models: [String] = ["mistral:7b"]
    var loaded: [String] = []
    var max: Int? = 1
}

/// Starts one fake Ollama per `backends` entry (named b0, b1, ... in X-Backend), a one-worker proxy in front of all
/// of them with health checks only when asked (`checkNow`), waits for a first round of checks so the catalogs are
/// known, runs `body`, then stops everything.
func withBackends(_ backends: [FakeBackend], tokens: Int = 5, configure: (inout ServerConfig) -> Void = { _ in },
                  body: (Proxy, [FakeOllamaServer]) throws -> Void) throws {
    var fakes: [FakeOllamaServer] = []
    defer { for f in fakes { f.stepMode = false; f.stop() } }
    for (i, b) in backends.enumerated() {
        var config = FakeOllamaConfig(port: 0, tokens: tokens, intervalMs: 0, model: b.models[0])
        config.extraModels = Array(b.models.dropFirst())
        config.loaded = b.loaded
        config.name = "b\(i)"
        let fake = try FakeOllamaServer(config: config)
        fake.start()
        fakes.append(fake)
    }
    try withProxy(configure: { config in
        config.upstreams = zip(fakes, backends).map { fake, b in
            BackendSpec(address: UpstreamAddress(parsing: "http://127.0.0.1:\(fake.port)")!, maxInFlight: b.max)
        }
        // Checks run when a test asks (and once at start): no timing in the tests.
        config.healthInterval = 3_600
        // The backends' max= is what makes requests wait here, not the shipped per-user cap (2): every request of
        // these tests comes from the same anonymous user.
        config.concurrency = nil
        configure(&config)
    }, upstream: fakes[0]) { proxy in
        try #require(checkNow(proxy.server), "the first health checks never finished")
        try body(proxy, fakes)
    }
}

/// Puts every fake in step mode and sends `request` (a streamed inference request) once per backend, each on its
/// own TLS connection, so that each backend ends up holding one stream; returns the connections, to close.
func holdOneStreamPerBackend(_ proxy: Proxy, _ fakes: [FakeOllamaServer], request: String) throws -> [HTTPClient] {
    for f in fakes { f.stepMode = true }
    var clients: [HTTPClient] = []
    for _ in fakes {
        let client = try proxy.tls()
        clients.append(client)
        try client.send(request)
    }
    return clients
}

/// Runs a round of backend checks that starts now and waits for it to finish.
func checkNow(_ server: Server) -> Bool {
    let done = DispatchSemaphore(value: 0)
    server.checkBackendsNow { done.signal() }
    return done.wait(timeout: .now() + eventTimeout) == .success
}

extension FakeOllamaServer {
    /// Requests that were not health checks or model polls.
    var proxiedRequests: [RecordedRequest] {
        requests.filter { $0.header("User-Agent") != "tollgate-health" }
    }
}

extension Response {
    /// The fake backend that answered (X-Backend), if any.
    var backend: String? { head.header("X-Backend") }
}
