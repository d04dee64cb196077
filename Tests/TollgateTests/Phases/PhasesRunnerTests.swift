import Testing
import TollgateHTTP
import TollgateIO
@testable import Tollgate

/// The phase runner on its own, without sockets: a stand-in host records what the runner asks of it, and phases
/// made of closures say what they decide.
@Suite struct PhasesRunnerTests {
    /// Records what the runner asks of its host.
    final class Host: PhaseHost {
        var owned: Exchange?
        var events: [String] = []

        func owns(_ ex: Exchange) -> Bool { owned === ex }

        func respond(_ ex: Exchange, _ error: ErrorResponse, reason: CloseReason) {
            events.append("respond \(error.status) \(reason)")
            owned = nil
        }

        func reply(_ ex: Exchange, _ reply: PhaseOutcome.Reply) {
            events.append("reply \(reply.status)")
            owned = nil
        }

        func phasesPassed(_ ex: Exchange) {
            events.append("passed")
            owned = nil
        }

        func phasesPaused() { events.append("paused") }
    }

    /// A phase whose decision is a closure; it logs its name on the host when it runs.
    final class Step: ExchangePhase {
        let name: String
        let readsHead: Bool
        let decide: (Exchange, RequestHead, Host) -> PhaseOutcome

        init(_ name: String, readsHead: Bool = false,
             _ decide: @escaping (Exchange, RequestHead, Host) -> PhaseOutcome = { _, _, _ in .next }) {
            self.name = name
            self.readsHead = readsHead
            self.decide = decide
        }

        func run(_ ex: Exchange, head: RequestHead, on host: Host) -> PhaseOutcome {
            host.events.append(name)
            return decide(ex, head, host)
        }
    }

    static let request = Array("GET /api/tags HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n".utf8)

    static func head() throws -> RequestHead {
        var head = RequestHead()
        guard case .complete = RequestParser().parse(request, from: 0, to: request.count, into: &head) else {
            throw ParseFailed()
        }
        return head
    }

    struct ParseFailed: Error {}

    /// An exchange owned by `host` (its own runner is unused here: these tests drive theirs).
    static func exchange(on host: Host) throws -> Exchange {
        let head = try head()
        let ex = Exchange(requestID: RequestID(0), head: head, buffer: request, family: .ollama, route: .readOnly,
                          bodyLimit: 0, start: 0, phases: PhaseRunner<ClientConnection>([]))
        host.owned = ex
        return ex
    }

    static let refusal = ErrorResponse(status: 403, message: "no")

    @Test func phasesRunInOrderThenTheContentHandler() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a"), Step("b"), Step("c")])
        runner.run(ex, head: try Self.head(), on: host)
        #expect(host.events == ["a", "b", "c", "passed"])
    }

    @Test func anAnswerStopsTheChain() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a"), Step("b") { _, _, _ in .answer(Self.refusal, .rejected) }, Step("c")])
        runner.run(ex, head: try Self.head(), on: host)
        #expect(host.events == ["a", "b", "respond 403 rejected"])
        // A completion that arrives for it now is stale.
        var gone = false
        runner.resume(ex, on: host, ifGone: { gone = true }) {
            Issue.record("decided for a finished exchange")
            return .next
        }
        #expect(gone)
    }

    @Test func aReplyStopsTheChain() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a") { _, _, _ in .reply(.json(200, "{}")) }, Step("b")])
        runner.run(ex, head: try Self.head(), on: host)
        #expect(host.events == ["a", "reply 200"])
    }

    @Test func aWaitPausesUntilResumeGoesOnFromTheNextPhase() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a"), Step("b") { _, _, _ in .wait }, Step("c")])
        runner.run(ex, head: try Self.head(), on: host)
        #expect(host.events == ["a", "b", "paused"])
        runner.resume(ex, on: host) { .next }
        #expect(host.events == ["a", "b", "paused", "c", "passed"])
    }

    @Test func aResumeCanAnswer() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a") { _, _, _ in .wait }, Step("b")])
        runner.run(ex, head: try Self.head(), on: host)
        runner.resume(ex, on: host) { .answer(Self.refusal, .rateLimited) }
        #expect(host.events == ["a", "paused", "respond 403 rateLimited"])
    }

    @Test func aResumeThatStillWaitsKeepsWaiting() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a") { _, _, _ in .wait }, Step("b")])
        runner.run(ex, head: try Self.head(), on: host)
        // A queue place instead of a slot: still waiting, then the slot.
        runner.resume(ex, on: host) { .wait }
        #expect(host.events == ["a", "paused"])
        runner.resume(ex, on: host) { .next }
        #expect(host.events == ["a", "paused", "b", "passed"])
    }

    @Test func aStaleCompletionIsIgnoredAndGivesBackWhatItBrought() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a") { _, _, _ in .wait }, Step("b")])
        runner.run(ex, head: try Self.head(), on: host)
        // The client went away while the phase waited.
        host.owned = nil
        var decided = false
        var gaveBack = false
        runner.resume(ex, on: host, ifGone: { gaveBack = true }) {
            decided = true
            return .next
        }
        #expect(!decided)
        #expect(gaveBack)
        #expect(host.events == ["a", "paused"])
        // The host owns the same exchange object again (it cannot, but even so): the runner already knows it ended.
        host.owned = ex
        gaveBack = false
        runner.resume(ex, on: host, ifGone: { gaveBack = true }) { .next }
        #expect(gaveBack)
        #expect(host.events == ["a", "paused"])
    }

    @Test func aCompletionForAnotherExchangeOfTheHostIsStale() throws {
        let host = Host()
        let first = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a") { _, _, _ in .wait }])
        runner.run(first, head: try Self.head(), on: host)
        // The first exchange ended; the connection went on with the next one, which waits too.
        let second = try Self.exchange(on: host)
        runner.run(second, head: try Self.head(), on: host)
        var gone = false
        runner.resume(first, on: host, ifGone: { gone = true }) { .answer(Self.refusal, .rejected) }
        #expect(gone)
        #expect(host.events == ["a", "paused", "a", "paused"])
    }

    @Test func aCompletionBeforeThePhaseReturnedIsItsDecision() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        var runner: PhaseRunner<Host>!
        // The decision-maker answers at once, inside the phase (a cache hit, a readiness already known).
        let early = Step("a") { ex, _, host in
            runner.resume(ex, on: host) { .next }
            return .wait
        }
        runner = PhaseRunner<Host>([early, Step("b")])
        runner.run(ex, head: try Self.head(), on: host)
        #expect(host.events == ["a", "b", "passed"])
    }

    @Test func anEarlyAnswerEndsTheExchange() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        var runner: PhaseRunner<Host>!
        let early = Step("a") { ex, _, host in
            runner.resume(ex, on: host) { .reply(.json(503, "{}")) }
            return .wait
        }
        runner = PhaseRunner<Host>([early, Step("b")])
        runner.run(ex, head: try Self.head(), on: host)
        #expect(host.events == ["a", "reply 503"])
    }

    @Test func aPhaseThatEndsTheExchangeItselfStopsTheChain() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a") { _, _, host in
            host.owned = nil  // its connection failed while it wrote
            return .wait
        }, Step("b")])
        runner.run(ex, head: try Self.head(), on: host)
        #expect(host.events == ["a"])
    }

    @Test func theHeadIsHeldThroughAWaitOnlyWhileAPhaseStillReadsIt() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        var origins: [String] = []
        let readsOrigin = Step("origin", readsHead: true) { _, head, _ in
            for field in head.headers where field.kind == .origin {
                origins.append(String(decoding: Self.request[field.value], as: UTF8.self))
            }
            return .next
        }
        let runner = PhaseRunner<Host>([Step("rate") { _, _, _ in .wait }, readsOrigin, Step("slot") { _, _, _ in .wait },
                                        Step("last")])
        runner.run(ex, head: try Self.head(), on: host)
        #expect(ex.progress.heldHead != nil, "a phase that reads the head still follows the wait")
        runner.resume(ex, on: host) { .next }
        #expect(origins == ["https://a.example"])
        #expect(ex.progress.heldHead == nil, "no phase after this wait reads the head")
        runner.resume(ex, on: host) { .next }
        #expect(host.events == ["rate", "paused", "origin", "slot", "paused", "last", "passed"])
    }

    @Test func theProgressIsKeptOnTheExchange() throws {
        let host = Host()
        let ex = try Self.exchange(on: host)
        let runner = PhaseRunner<Host>([Step("a"), Step("b") { _, _, _ in .wait }, Step("c")])
        runner.run(ex, head: try Self.head(), on: host)
        #expect(ex.progress.index == 1)
        guard case .waiting = ex.progress.state else {
            Issue.record("not waiting: \(ex.progress.state)")
            return
        }
    }
}

/// The phase list the worker builds: only what the configuration switches on, in order, rebuilt by a reload.
@Suite struct PhasesListTests {
    static func names(_ runner: PhaseRunner<ClientConnection>) -> [String] {
        runner.phases.map { String(describing: type(of: $0)) }
    }

    @Test func theListHoldsOnlyThePhasesTheConfigurationSwitchesOn() throws {
        let loop = try EventLoop(index: 0)
        var config = ServerConfig()
        config.metricsListen = []
        config.healthPath = nil
        config.readyPath = nil
        config.cloudModels = .all
        let worker = Worker(loop: loop, config: config, tls: nil, authenticator: nil, rateLimiter: nil,
                            concurrency: nil, userRateLimiter: nil, logSink: nil)
        #expect(Self.names(worker.phases) == ["Preflight", "RoutePolicy", "BodyReading", "ModelGate"])
    }

    @Test func aReloadRebuildsTheListAndAnExchangeKeepsItsOwn() throws {
        let loop = try EventLoop(index: 0)
        var config = ServerConfig()
        config.metricsListen = []
        config.cloudModels = .all
        let worker = Worker(loop: loop, config: config, tls: nil, authenticator: nil,
                            rateLimiter: RateLimiter(settings: RateLimitSettings()), concurrency: nil,
                            userRateLimiter: nil, logSink: nil)
        let before = worker.phases
        #expect(Self.names(before) == ["RateLimiting", "Preflight", "Health", "RoutePolicy", "BodyReading",
                                       "ModelGate"])
        config.corsOrigins = ["https://a.example"]
        config.publicPaths = ["/api/version"]
        config.cloudModels = .off
        worker.config = config
        #expect(Self.names(worker.phases) == ["RateLimiting", "Preflight", "Health", "CORS", "PublicPaths",
                                              "RoutePolicy", "CloudModelPath", "BodyReading", "ModelGate",
                                              "SharedModelGuard"])
        #expect(worker.phases !== before)
        #expect(Self.names(before).count == 6, "a runner an exchange started with does not change")
    }
}
