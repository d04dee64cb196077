import Glibc
import Testing
import TollgateHTTP
import TollgateIO
@testable import Tollgate

/// A slot or a backend lease granted to a queued request is handed to the request's loop; when that loop has
/// stopped (its server shutting down) the hand-over never runs, so the grant goes back where it came from instead
/// of staying counted. Each test queues a request behind a held grant, stops the loop, then frees the held grant:
/// the limiter (or the backend set) grants it to the queued request, whose loop refuses it.
@Suite struct LimitsHandOverTests {
    static let request = Array("POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n".utf8)

    /// A worker on a loop that is not running yet, one connection on it (a socket pair's end) and an inference
    /// exchange that connection owns.
    final class Setup {
        let loop: EventLoop
        let worker: Worker
        let connection: ClientConnection
        let exchange: Exchange
        let fds: [Int32]

        init(concurrency: ConcurrencyLimiter) throws {
            loop = try EventLoop(index: 0, tickMillis: 10)
            var config = ServerConfig()
            config.metricsListen = []
            worker = Worker(loop: loop, config: config, tls: nil, authenticator: nil,
                            rateLimiter: RateLimiter(settings: RateLimitSettings()), concurrency: concurrency,
                            userRateLimiter: nil, logSink: nil)
            var pair: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { throw Failed("socketpair") }
            fds = pair
            connection = ClientConnection(worker: worker, transport: .plain(pair[0]),
                                          peer: SocketAddress(parsing: "127.0.0.1:1")!, kind: .plain)
            var head = RequestHead()
            guard case .complete = RequestParser().parse(LimitsHandOverTests.request, from: 0,
                                                         to: LimitsHandOverTests.request.count, into: &head) else {
                throw Failed("the request did not parse")
            }
            exchange = Exchange(requestID: RequestID(0), head: head, buffer: LimitsHandOverTests.request, family: .ollama,
                                route: .inference, bodyLimit: 2, start: 0, phases: worker.phases)
            connection.exchange = exchange
            connection.life.exchangeStarted()
        }

        /// Runs the loop on another thread until it has stopped for good.
        func stopLoop() -> Bool {
            let box = LoopBox(loop)
            loop.execute { box.loop.stop() }
            return box.runInBackground()()
        }

        deinit { for fd in fds { close(fd) } }
    }

    struct Failed: Error {
        let what: String
        init(_ what: String) { self.what = what }
    }

    @Test func aSlotGrantedToARequestWhoseLoopStoppedGoesBackToTheLimiter() throws {
        var settings = ConcurrencyLimiter.Settings()
        settings.global = 1
        let limiter = ConcurrencyLimiter(settings: settings)
        let setup = try Setup(concurrency: limiter)
        guard case .acquired(let held) = limiter.acquire(user: "bob", nowMillis: 0, onGranted: { _ in }, onExpired: {}) else {
            Issue.record("the only slot was not free")
            return
        }
        let provider = LocalSlotProvider(limiter: limiter)
        let later = Resumption<SlotAnswer>(ex: setup.exchange, host: setup.connection, read: Concurrency.read,
                                           giveBack: { provider.giveBack($0) })
        guard case .now(.queued) = provider.acquire(user: "alice", perUser: nil, nowMillis: 0, later: later) else {
            Issue.record("the request did not queue")
            return
        }
        #expect(limiter.queued == 1)
        #expect(setup.stopLoop(), "the loop did not stop")
        // The only slot is freed: granted to the queued request, refused by its stopped loop, given back.
        limiter.release(held)
        #expect(limiter.queued == 0)
        #expect(limiter.inFlight == 0, "the grant the stopped loop refused is still counted")
    }

    @Test func aBackendLeaseGrantedToARequestWhoseLoopStoppedGoesBackToTheBackend() throws {
        let limiter = ConcurrencyLimiter(settings: ConcurrencyLimiter.Settings())
        let setup = try Setup(concurrency: limiter)
        let backends = BackendSet(backends: [(UpstreamAddress(parsing: "http://127.0.0.1:1")!, 1)], queueLimit: 4,
                                  queueTimeoutMillis: 600_000, failuresToEject: 3)
        setup.worker.peers = UpstreamPeers(backendSet: backends)
        guard case .acquired(let held) = backends.acquire(model: nil, counted: true, excluded: 0, nowMillis: 0,
                                                           onGranted: { _ in }, onExpired: {}, onUnservable: { _ in }) else {
            Issue.record("the backend's one place was not free")
            return
        }
        setup.connection.choosePeer(setup.exchange)
        #expect(setup.exchange.backendTicket != nil, "the request did not queue for the backend")
        #expect(backends.queued == 1)
        #expect(setup.stopLoop(), "the loop did not stop")
        backends.release(held)
        #expect(backends.queued == 0)
        #expect(backends.snapshot.first?.inFlight == 0, "the lease the stopped loop refused is still counted")
    }
}
