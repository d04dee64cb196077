import Dispatch
import FakeOllama
import Foundation
import Glibc
import Synchronization
import Testing
@testable import Tollgate
import TollgateIO

/// A graceful stop (`shutdown` with a grace period, as SIGTERM) while a stream is in flight and a second request
/// waits in the queue for the one inference slot, on one worker and on two: with time to finish, both are answered
/// in full; with none, both are closed. Either way each leaves its usage-ledger row and its access-log line, the
/// server stops on its own, and it lets go of its workers and loops (a stopped loop drops what it still held, so
/// the drain's last work must be done before its loop ends, not left queued on it).
@Suite struct DrainCompletionTests {
    static let alice = Credential.basic("alice", "pw-a")
    /// fake-ollama streams `tokens` lines and a final one.
    static let tokens = 5

    /// What a drain left behind, read once the server has stopped and been let go of.
    struct Outcome {
        var rows: [UsageRow] = []
        var lines: [[String: Any]?] = []
        var inFlight = -1
        var queued = -1
        var stillAlive: [String] = []
    }

    /// A proxy with one inference slot and a queue, the usage ledger and a JSON access log: starts a held stream
    /// and queues a second request behind it, then runs `body` with both clients. Returns what the stopped server
    /// left behind.
    static func drain(workers: Int, body: (Proxy, FakeOllamaServer, HTTPClient, HTTPClient) throws -> Void) throws -> Outcome {
        let dir = try OpsTempDirectory()
        let log = dir.file("access.log")
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-drain-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: state) }
        let database = StateDatabase.path(in: state.path + "/state")
        let users = try TestUsers.parse("alice:{PLAIN}pw-a\n")
        var settings = ConcurrencyLimiter.Settings()
        settings.perUser = 2
        settings.global = 1
        settings.queueLimit = 2
        settings.queueTimeoutMillis = 600_000
        var outcome = Outcome()
        weak var server: Server?
        var held: [(String, () -> AnyObject?)] = []
        var limiter: ConcurrencyLimiter?
        try withProxyAndFake(tokens: tokens, configure: { config in
            config.workers = workers
            config.users = users
            config.concurrency = settings
            config.databasePath = database
            config.accessLog = .json
            config.accessLogPath = log
        }) { proxy, fake in
            fake.stepMode = true
            defer { fake.stepMode = false }
            server = proxy.server
            limiter = proxy.server.concurrency
            for (i, worker) in proxy.server.workers.enumerated() {
                weak var w = worker, loop = worker.loop
                held += [("worker \(i)", { w }), ("loop \(i)", { loop })]
            }
            let slots = try #require(limiter)
            let first = try proxy.tls()
            defer { first.close() }
            try first.send(Req.generate(alice))
            try #require(fake.waitForRequests(1, timeoutSeconds: eventTimeout), "the stream never reached Ollama")
            let second = try proxy.tls()
            defer { second.close() }
            try second.send(Req.generate(alice))
            try #require(waitUntil { slots.queued == 1 }, "the second request did not queue")
            try body(proxy, fake, first, second)
            #expect(waitUntilStopped(proxy.server, timeoutSeconds: stopTimeoutSeconds), "the server did not stop")
        }
        // The server has stopped and its log writer and ledger have written everything queued to them.
        outcome.rows = try UsageStore(reading: database).rows()
        outcome.lines = accessLogObjects(OpsFiles.lines(log))
        outcome.inFlight = limiter?.inFlight ?? -1
        outcome.queued = limiter?.queued ?? -1
        limiter = nil
        // The harness's waiting thread lets go of the server a moment after it signals.
        _ = waitUntil { server == nil && held.allSatisfy { $0.1() == nil } }
        outcome.stillAlive = (server == nil ? [] : ["server"]) + held.filter { $0.1() != nil }.map(\.0)
        return outcome
    }

    /// Starts the stop on another thread (as the signal thread does) and waits until every worker drains: each
    /// loop has run the shutdown, closed its listeners and begun draining. Asked on each loop, not by probing the
    /// port, which another test may have bound again by then.
    static func stopAccepting(_ proxy: Proxy, graceSeconds: Double) -> Bool {
        let server = proxy.server
        DispatchQueue.global().async { server.shutdown(graceSeconds: graceSeconds) }
        return waitUntil { server.workers.allSatisfy { isDraining($0) } }
    }

    /// Whether `worker` drains, read on its own loop (a loop that has stopped drained).
    static func isDraining(_ worker: Worker) -> Bool {
        read(worker, ifStopped: true, ifUnanswered: false) { $0.draining }
    }

    /// `worker`'s open client connections, read on its own loop (-1 once it has stopped).
    static func connections(_ worker: Worker) -> Int {
        read(worker, ifStopped: -1, ifUnanswered: -1) { $0.clientConnections }
    }

    /// `value` of `worker`, read on its own loop: `ifStopped` when the loop has stopped and refuses the question,
    /// `ifUnanswered` when a question it took (which runs, even in its last pass) was not answered in time.
    static func read<T>(_ worker: Worker, ifStopped: T, ifUnanswered: T, _ value: @escaping (Worker) -> T) -> T {
        let answer = Mutex<T?>(nil)
        let box = UncheckedBox((worker, value))
        guard worker.loop.execute({ answer.withLock { $0 = box.value.1(box.value.0) } }) else { return ifStopped }
        _ = waitUntil { answer.withLock { $0 } != nil }
        return answer.withLock { $0 } ?? ifUnanswered
    }

    /// A request queued on the second loop still times out (429) when the first loop, with nothing left to drain,
    /// has stopped: every loop sweeps the wait queues, not the first alone. The one slot is held by the test, and
    /// the grace period is far longer than the test, so the queue timeout is the only thing that can answer it.
    @Test func aRequestQueuedOnTheSecondLoopTimesOutAfterTheFirstLoopHasStopped() throws {
        var settings = ConcurrencyLimiter.Settings()
        settings.global = 1
        settings.queueTimeoutMillis = 2_000
        try withProxyAndFake(configure: { config in
            config.workers = 2
            config.users = try? TestUsers.parse("alice:{PLAIN}pw-a\n")
            config.concurrency = settings
        }) { proxy, fake in
            let limiter = try #require(proxy.server.concurrency)
            guard case .acquired(let held) = limiter.acquire(user: "bob", nowMillis: 0, onGranted: { _ in }, onExpired: {}) else {
                Issue.record("the only slot was not free")
                return
            }
            defer { limiter.release(held) }
            // Connections land on a loop by their address's hash: open them until one is on the second loop. The
            // others stay idle, and the drain closes them.
            var others: [HTTPClient] = []
            defer { for c in others { c.close() } }
            var onSecond: HTTPClient?
            for _ in 0..<64 where onSecond == nil {
                let before = Self.connections(proxy.server.workers[1])
                let client = try proxy.tls()
                if Self.connections(proxy.server.workers[1]) > before { onSecond = client } else { others.append(client) }
            }
            let client = try #require(onSecond, "no connection landed on the second loop")
            defer { client.close() }
            try client.send(Req.generate(Self.alice))
            try #require(waitUntil { limiter.queued == 1 }, "the request did not queue")
            #expect(Self.stopAccepting(proxy, graceSeconds: 3_600), "the loops did not start draining")
            // The first loop had nothing in flight: it has stopped, or stops now.
            #expect(waitUntil { Self.connections(proxy.server.workers[0]) == -1 }, "the first loop did not stop")
            let answer = try client.readResponse()
            #expect(answer.status == 429)
            #expect(answer.head.header("Retry-After") != nil)
            #expect(fake.requests.isEmpty)
        }
    }

    @Test(arguments: [1, 2]) func aDrainWithTimeLeftAnswersTheStreamAndTheQueuedRequestInFull(workers: Int) throws {
        let outcome = try Self.drain(workers: workers) { proxy, fake, first, second throws in
            // Far longer than the test: the grace period must not be what ends these requests.
            #expect(Self.stopAccepting(proxy, graceSeconds: 3_600), "new connections were still accepted while draining")
            fake.allowLines(Self.tokens + 1)
            let streamed = try first.readResponse()
            #expect(streamed.status == 200)
            #expect(streamed.text.contains(#""done":true"#), "the stream in flight was cut: \(streamed.text)")
            // The slot it gave back goes to the queued request, which reaches Ollama and is answered while draining.
            #expect(fake.waitForRequests(2, timeoutSeconds: eventTimeout), "the queued request never reached Ollama")
            fake.allowLines(Self.tokens + 1)
            let queued = try second.readResponse()
            #expect(queued.status == 200)
            #expect(queued.text.contains(#""done":true"#), "the queued request's stream was cut: \(queued.text)")
            #expect(queued.head.header("Connection")?.lowercased() == "close")
            #expect(try first.isClosedByPeer() && second.isClosedByPeer())
        }
        #expect(outcome.rows.map(\.route) == ["/api/generate", "/api/generate"])
        #expect(outcome.rows.allSatisfy { $0.status == 200 && $0.user == "alice" && $0.completionTokens != nil })
        #expect(outcome.lines.count == 2)
        #expect(outcome.lines.allSatisfy { $0?["status"] as? Int == 200 && $0?["end"] as? String == "done" },
                "\(outcome.lines)")
        #expect(outcome.inFlight == 0 && outcome.queued == 0)
        #expect(outcome.stillAlive.isEmpty, "still alive after the stop: \(outcome.stillAlive)")
    }

    @Test(arguments: [1, 2]) func aDrainWithNoTimeLeftClosesTheStreamAndTheQueuedRequestAndKeepsTheirRecords(workers: Int) throws {
        let outcome = try Self.drain(workers: workers) { proxy, fake, first, second throws in
            fake.allowLines(1)
            #expect(try first.readHead().status == 200)
            #expect(try first.readLine()?.contains(#""done":false"#) == true)
            #expect(Self.stopAccepting(proxy, graceSeconds: 0), "new connections were still accepted while draining")
            // Both are closed: the stream mid-body, the queued request without an answer.
            var lines: [String] = []
            while let line = try? first.readLine() { lines.append(line) }
            #expect(!lines.contains { $0.contains(#""done":true"#) }, "the stream finished after the grace ran out: \(lines)")
            #expect((try? second.readResponse()) == nil, "the queued request was answered after the grace ran out")
        }
        #expect(outcome.rows.map(\.route) == ["/api/generate", "/api/generate"])
        #expect(outcome.rows.map(\.status).sorted() == [200, 499], "\(outcome.rows.map(\.status))")
        #expect(outcome.rows.allSatisfy { $0.user == "alice" })
        #expect(outcome.lines.count == 2)
        #expect(outcome.lines.compactMap { $0?["status"] as? Int }.sorted() == [200, 499], "\(outcome.lines)")
        #expect(outcome.lines.allSatisfy { $0?["end"] as? String == "draining" }, "\(outcome.lines)")
        // Closing the stream can give its slot to the queued request in the pass that closes that request too, or
        // after its loop stopped: the hand-over runs as the loop stops, or is refused, and the slot comes back.
        #expect(outcome.inFlight == 0 && outcome.queued == 0, "in flight \(outcome.inFlight), queued \(outcome.queued)")
        #expect(outcome.stillAlive.isEmpty, "still alive after the stop: \(outcome.stillAlive)")
    }
}
