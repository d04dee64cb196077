import Glibc
import Testing
@testable import Tollgate
import TollgateIO
import TollgateTestSupport

/// A stopped server lets go of everything it built: its workers, their event loops, TLS contexts and OpenSSL
/// library contexts. One server runs per `tollgate serve`, but a process that starts many (this test run, an
/// embedding) kept every stopped one alive: the first worker's loop held a periodic timer whose body held every
/// worker, each of which holds its loop. Each OpenSSL library context takes two thread keys, and a long test run
/// ran out of them (1,024), failing handshake set-up with "malloc failure".
@Suite struct ServerTeardownTests {
    @Test(arguments: [1, 2]) func aStoppedServerFreesItsWorkersLoopsAndTLSContexts(workers: Int) throws {
        weak var server: Server?
        var heldWorkers: [() -> AnyObject?] = []
        try withProxyAndFake(configure: { $0.workers = workers }) { proxy, _ in
            server = proxy.server
            for worker in proxy.server.workers {
                weak var w = worker, loop = worker.loop, tls = worker.tls, library = worker.tls?.library
                #expect(tls != nil && library != nil)
                heldWorkers += [{ w }, { loop }, { tls }, { library }]
            }
            // Traffic first, so connections, pooled upstream connections and sessions existed and were closed.
            for _ in 0..<workers * 4 {
                let client = try proxy.tls()
                try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try client.readResponse().status == 200)
                client.close()
            }
            let kept = try proxy.tls()
            try kept.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try kept.readResponse().status == 200)
            // Left open: the shutdown closes it.
        }
        // The harness waits for the stop on a dispatch thread whose closure holds the server until a moment after
        // it signals: wait for that to be let go of too.
        _ = waitUntil { server == nil && heldWorkers.allSatisfy { $0() == nil } }
        #expect(server == nil, "the server is still alive")
        #expect(heldWorkers.count == workers * 4)
        for (i, held) in heldWorkers.enumerated() {
            #expect(held() == nil, "worker \(i / 4): its \(["worker", "loop", "TLS context", "library context"][i % 4]) is still alive")
        }
    }

    /// Waiting for a stop twice (a test waits, then its harness does; an embedding may wait from two threads) stops
    /// things once: the second wait used to close the access log's descriptor again, and with it whatever the
    /// process had opened under that number in between.
    @Test func waitingForTheStopAgainClosesNoDescriptorItDoesNotOwn() throws {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        var opened: [Int32] = []
        defer { for fd in opened where fd >= 0 { close(fd) } }
        try withProxyAndFake(configure: { config in
            config.accessLog = .json
            config.accessLogPath = log
        }) { proxy, _ in
            let client = try proxy.tls()
            defer { client.close() }
            try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            proxy.server.shutdown(graceSeconds: 0)
            #expect(waitUntilStopped(proxy.server, timeoutSeconds: stopTimeoutSeconds), "the server did not stop")
            // The numbers the stopped server let go of are the lowest free ones: what opens next takes them.
            opened = (0..<16).map { _ in open("/dev/null", O_RDONLY) }
            #expect(opened.allSatisfy { $0 >= 0 })
            // The harness waits for the stop again when this returns.
        }
        let closed = opened.filter { fcntl($0, F_GETFD) == -1 }
        #expect(closed.isEmpty, "waiting for the stop again closed descriptors \(closed)")
        #expect(OpsFiles.lines(log).count == 1)
    }
}

/// With shared limits, each worker also holds a Redis client, which asserts when it is freed with its socket open:
/// a stopped server frees those too, after its drain closed them, whether Redis was up at the stop or had gone away
/// (the client then between reconnect attempts).
@Suite(.enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct ServerTeardownRedisTests {
    @Test(arguments: [true, false]) func aStoppedServerFreesItsRedisClientsClosed(redisUpAtTheStop: Bool) throws {
        let redis = try RedisServerProcess()
        weak var server: Server?
        var held: [(String, () -> AnyObject?)] = []
        try withProxyAndFake(configure: { config in
            config.workers = 2
            config.users = try? TestUsers.parse("alice:{PLAIN}pw-a\n")
            var caps = ConcurrencyLimiter.Settings()
            caps.perUser = 4
            caps.global = 4
            config.concurrency = caps
            config.sharedLimits = redis.sharedLimits()
        }) { proxy, _ in
            server = proxy.server
            let status = try #require(proxy.server.sharedStatus)
            #expect(eventually { status.isUp }, "the Redis clients never connected")
            for (i, worker) in proxy.server.workers.enumerated() {
                let shared = try #require(worker.shared)
                weak var w = worker, limits = shared, client = shared.client
                held += [("worker \(i)", { w }), ("shared limits \(i)", { limits }), ("Redis client \(i)", { client })]
            }
            // Slots leased and given back through Redis.
            for _ in 0..<4 {
                #expect(try proxy.fetch(Req.generate(Credential.basic("alice", "pw-a"))).status == 200)
            }
            if !redisUpAtTheStop { try redis.kill(seenBy: proxy) }
        }
        _ = waitUntil { server == nil && held.allSatisfy { $0.1() == nil } }
        #expect(server == nil, "the server is still alive")
        #expect(held.count == 6)
        for (name, object) in held { #expect(object() == nil, "\(name) is still alive") }
    }
}
