@testable import Tollgate
import Synchronization
import Testing

/// Records backend grants and expiries in order, from any thread.
final class BackendCallLog: Sendable {
    private let entries = Mutex<[String]>([])
    private let leases = Mutex<[String: BackendLease]>([:])

    var all: [String] { entries.withLock { $0 } }
    func lease(_ name: String) -> BackendLease? { leases.withLock { $0[name] } }

    func granted(_ name: String) -> @Sendable (BackendLease) -> Void {
        { lease in
            self.entries.withLock { $0.append("granted \(name) on \(lease.backend)") }
            self.leases.withLock { $0[name] = lease }
        }
    }

    func expired(_ name: String) -> @Sendable () -> Void {
        { self.entries.withLock { $0.append("expired \(name)") } }
    }

    func unservable(_ name: String) -> @Sendable (BackendChoice) -> Void {
        { choice in
            let what: String
            switch choice {
            case .unavailable: what = "unavailable"
            case .noModel: what = "noModel"
            default: what = "other"
            }
            self.entries.withLock { $0.append("\(what) \(name)") }
        }
    }
}

@Suite("BackendSet: selection, the wait queue, ejection and recovery")
struct UpstreamsBackendSetTests {
    static let addresses = (0..<4).map { UpstreamAddress(parsing: "http://127.0.0.1:\(20_000 + $0)")! }

    func set(_ limits: [Int?], queue: Int = 16, timeout: UInt64 = 30_000, fails: Int = 3) -> BackendSet {
        BackendSet(backends: limits.enumerated().map { (Self.addresses[$0.offset], $0.element) }, queueLimit: queue,
                   queueTimeoutMillis: timeout, failuresToEject: fails)
    }

    func take(_ s: BackendSet, _ model: String?, counted: Bool = true, excluded: UInt64 = 0, _ log: BackendCallLog,
              name: String = "", at now: UInt64 = 0) -> BackendChoice {
        s.acquire(model: model.map(ModelName.normalize), counted: counted, excluded: excluded, nowMillis: now,
                  onGranted: log.granted(name), onExpired: log.expired(name), onUnservable: log.unservable(name))
    }

    func backend(_ c: BackendChoice) -> Int? {
        if case .acquired(let lease) = c { return lease.backend }
        return nil
    }

    func lease(_ c: BackendChoice) -> BackendLease? {
        if case .acquired(let lease) = c { return lease }
        return nil
    }

    @Test func leastLoadedWinsAndTiesGoRoundRobin() {
        let s = set([2, 2, 2])
        let log = BackendCallLog()
        // Equal load: round-robin 0, 1, 2.
        let first = [take(s, "m", log), take(s, "m", log), take(s, "m", log)]
        #expect(first.map(backend) == [0, 1, 2])
        // Backend 1's request ends: it is now the least loaded.
        s.release(lease(first[1])!)
        #expect(backend(take(s, "m", log)) == 1)
        // Everyone at 1 of 2: round-robin continues after 1.
        #expect(backend(take(s, "m", log)) == 2)
        #expect(s.snapshot.map(\.inFlight) == [1, 1, 2])
    }

    @Test func loadIsInFlightOverMax() {
        let s = set([4, 1])
        let log = BackendCallLog()
        #expect(backend(take(s, "m", log)) == 0)   // 0/4 vs 0/1: tie, round-robin starts at 0
        #expect(backend(take(s, "m", log)) == 1)   // 1/4 vs 0/1
        #expect(backend(take(s, "m", log)) == 0)   // 1 is full
        #expect(backend(take(s, "m", log)) == 0)
        #expect(backend(take(s, "m", log)) == 0)
        #expect(s.snapshot.map(\.inFlight) == [4, 1])
    }

    @Test func onlyBackendsWithTheModelAndLoadedPreferred() {
        let s = set([2, 2, 2])
        s.updateModels(0, models: ["mistral:7b"], loaded: ["mistral:7b"])
        s.updateModels(1, models: ["mistral:7b", "llama3:latest"], loaded: ["llama3:latest"])
        s.updateModels(2, models: ["llama3:latest"], loaded: [])
        let log = BackendCallLog()
        // "llama3" is "llama3:latest"; backend 1 has it loaded, so it goes first, then the least loaded with it.
        #expect(backend(take(s, "llama3", log)) == 1)
        #expect(backend(take(s, "llama3", log)) == 1)
        #expect(backend(take(s, "LLaMA3:latest", log)) == 2)
        #expect(backend(take(s, "mistral:7b", log)) == 0)
        // Nobody has gemma: 404.
        guard case .noModel = take(s, "gemma", log) else { Issue.record("expected noModel"); return }
    }

    @Test func anUnknownCatalogMayServeAnyModel() {
        let s = set([1, 1])
        s.updateModels(0, models: ["mistral:7b"], loaded: nil)
        let log = BackendCallLog()
        // Backend 1's catalog is not known yet: it is tried.
        #expect(backend(take(s, "gemma", log)) == 1)
    }

    @Test func nonModelRoutesIgnoreMaxAndModels() {
        let s = set([1, 1])
        s.updateModels(0, models: [], loaded: nil)
        s.updateModels(1, models: [], loaded: nil)
        let log = BackendCallLog()
        let a = take(s, nil, counted: false, log)
        let b = take(s, nil, counted: false, log)
        let c = take(s, nil, counted: false, log)
        #expect([a, b, c].map(backend) == [0, 1, 0])
        #expect(s.snapshot.map(\.inFlight) == [0, 0])
        #expect(s.snapshot.map(\.requests) == [2, 1])
    }

    @Test func waitersAreGrantedInOrderWhenASlotFrees() {
        let s = set([1, 1])
        let log = BackendCallLog()
        let a = lease(take(s, "m", log, name: "a"))!
        let b = lease(take(s, "m", log, name: "b"))!
        guard case .queued = take(s, "m", log, name: "c"), case .queued = take(s, "m", log, name: "d") else {
            Issue.record("expected to queue")
            return
        }
        #expect(s.queued == 2)
        s.release(b)
        #expect(log.all == ["granted c on 1"])
        s.release(a)
        #expect(log.all == ["granted c on 1", "granted d on 0"])
        // A second release of the same lease changes nothing.
        s.release(a)
        #expect(s.snapshot.map(\.inFlight) == [1, 1])
    }

    @Test func aWaiterForAModelWaitsForABackendThatHasIt() {
        let s = set([1, 1])
        s.updateModels(0, models: ["a:latest"], loaded: nil)
        s.updateModels(1, models: ["b:latest"], loaded: nil)
        let log = BackendCallLog()
        let a1 = lease(take(s, "a", log, name: "a1"))!
        let b1 = lease(take(s, "b", log, name: "b1"))!
        guard case .queued = take(s, "a", log, name: "a2") else { Issue.record("expected to queue"); return }
        s.release(b1)
        #expect(log.all.isEmpty)   // backend 1 has no "a"
        s.release(a1)
        #expect(log.all == ["granted a2 on 0"])
    }

    @Test func theQueueIsBoundedAndTimesOut() {
        let s = set([1], queue: 1, timeout: 1_000)
        let log = BackendCallLog()
        _ = take(s, "m", log, name: "a", at: 0)
        guard case .queued(let ticket) = take(s, "m", log, name: "b", at: 0) else { Issue.record("expected to queue"); return }
        guard case .rejected(let retry) = take(s, "m", log, name: "c", at: 0) else { Issue.record("expected 429"); return }
        #expect(retry > 0)
        s.expire(nowMillis: 999)
        #expect(log.all.isEmpty)
        s.expire(nowMillis: 1_000)
        #expect(log.all == ["expired b"])
        #expect(!s.cancel(ticket: ticket))
    }

    @Test func aCancelledWaiterIsNotGranted() {
        let s = set([1])
        let log = BackendCallLog()
        let a = lease(take(s, "m", log, name: "a"))!
        guard case .queued(let ticket) = take(s, "m", log, name: "b") else { Issue.record("expected to queue"); return }
        #expect(s.cancel(ticket: ticket))
        s.release(a)
        #expect(log.all.isEmpty)
        #expect(s.snapshot[0].inFlight == 0)
    }

    @Test func consecutiveFailuresEjectAndOneSuccessBringsBack() {
        let s = set([1, 1], fails: 3)
        #expect(s.recordFailure(0, detail: "refused") == nil)
        #expect(s.recordFailure(0, detail: "refused") == nil)
        #expect(s.recordSuccess(0) == nil)            // a success resets the count
        #expect(s.recordFailure(0, detail: "refused") == nil)
        #expect(s.recordFailure(0, detail: "refused") == nil)
        #expect(s.recordFailure(0, detail: "refused") == .ejected(name: "127.0.0.1:20000", failures: 3))
        #expect(s.recordFailure(0, detail: "refused") == nil)   // logged once
        #expect(s.snapshot.map(\.healthy) == [false, true])
        #expect(s.snapshot[0].ejections == 1)
        let log = BackendCallLog()
        #expect(backend(take(s, "m", log)) == 1)
        #expect(backend(take(s, nil, counted: false, log)) == 1)
        #expect(s.recordSuccess(0) == .recovered(name: "127.0.0.1:20000"))
        #expect(s.recordSuccess(0) == nil)
        #expect(backend(take(s, "m", log)) == 0)
    }

    @Test func aRecoveredBackendServesWaiters() {
        let s = set([1, 1], fails: 1)
        let log = BackendCallLog()
        s.recordFailure(0, detail: "down")
        _ = take(s, "m", log, name: "a")
        guard case .queued = take(s, "m", log, name: "b") else { Issue.record("expected to queue"); return }
        s.recordSuccess(0)
        #expect(log.all == ["granted b on 0"])
    }

    @Test func waitersLeftWithNoHealthyBackendAreAnsweredAtOnce() {
        let s = set([1, 1, 1], fails: 1)
        s.updateModels(0, models: ["a:latest"], loaded: nil)
        s.updateModels(1, models: ["a:latest"], loaded: nil)
        s.updateModels(2, models: ["b:latest"], loaded: nil)
        let log = BackendCallLog()
        _ = take(s, "a", log, name: "a1")
        _ = take(s, "a", log, name: "a2")
        _ = take(s, "b", log, name: "b1")
        guard case .queued = take(s, "a", log, name: "a3"), case .queued = take(s, "b", log, name: "b2"),
              case .queued = take(s, "a", excluded: 0b001, log, name: "a4") else {
            Issue.record("expected to queue")
            return
        }
        #expect(s.queued == 3)
        // Backend 1 goes: a3 still has backend 0, but a4 (which already tried 0) has no backend with "a" left; a
        // request arriving now with a4's history would get the same 404 (backend 2 is healthy but lacks "a").
        s.recordFailure(1, detail: "down")
        #expect(log.all == ["noModel a4"])
        // Backend 0 goes too: no healthy backend has "a" (backend 2 is healthy without it): 404, as for an arrival.
        s.recordFailure(0, detail: "down")
        #expect(log.all == ["noModel a4", "noModel a3"])
        guard case .noModel = take(s, "a", log, name: "a5") else { Issue.record("expected noModel"); return }
        // The last one: b2 has no healthy backend at all.
        s.recordFailure(2, detail: "down")
        #expect(log.all == ["noModel a4", "noModel a3", "unavailable b2"])
        #expect(s.queued == 0)
        guard case .unavailable = take(s, "b", log, name: "b3") else { Issue.record("expected unavailable"); return }
        // A failure that ejects nothing (already ejected) answers nobody twice.
        s.recordFailure(2, detail: "down")
        #expect(log.all.count == 3)
    }

    @Test func aCatalogThatLosesTheModelAnswersItsWaiters() {
        let s = set([1, 1])
        s.updateModels(0, models: ["a:latest"], loaded: nil)
        s.updateModels(1, models: ["b:latest"], loaded: nil)
        let log = BackendCallLog()
        _ = take(s, "a", log, name: "a1")
        guard case .queued = take(s, "a", log, name: "a2") else { Issue.record("expected to queue"); return }
        s.updateModels(0, models: ["a:latest", "c:latest"], loaded: nil)
        #expect(log.all.isEmpty)
        s.updateModels(0, models: ["c:latest"], loaded: nil)
        #expect(log.all == ["noModel a2"])
        #expect(s.queued == 0)
    }

    @Test func triedBackendsAreExcludedAndNoneLeftIsUnavailable() {
        let s = set([1, 1])
        let log = BackendCallLog()
        #expect(backend(take(s, "m", excluded: 0b01, log)) == 1)
        guard case .unavailable = take(s, "m", excluded: 0b11, log) else { Issue.record("expected unavailable"); return }
        s.recordFailure(0, detail: "x"); s.recordFailure(0, detail: "x"); s.recordFailure(0, detail: "x")
        s.recordFailure(1, detail: "x"); s.recordFailure(1, detail: "x"); s.recordFailure(1, detail: "x")
        #expect(!s.anyHealthy)
        guard case .unavailable = take(s, nil, counted: false, log) else { Issue.record("expected unavailable"); return }
    }

    @Test func modelListsAreReadFromTagsAndPs() {
        let tags = Array(#"{"models":[{"name":"mistral:7b","model":"mistral:7b","details":{"family":"llama","families":["llama"]}},{"name":"Llama3","model":"llama3:latest"}]}"#.utf8)
        #expect(ModelListScanner.names(in: tags) == ["mistral:7b", "llama3:latest"])
        #expect(ModelListScanner.names(in: Array(#"{"models":[]}"#.utf8)) == [])
        #expect(ModelListScanner.names(in: Array(#"{"error":"boom"}"#.utf8)) == nil)
        #expect(ModelListScanner.names(in: Array("<html>".utf8)) == nil)
        #expect(ModelListScanner.names(in: Array(#"{"models":[{"name":"a\"b"#.utf8)) == nil)
    }

    @Test func modelNamesNormalizeAsOllamaDoes() {
        #expect(ModelName.normalize("mistral") == "mistral:latest")
        #expect(ModelName.normalize("Mistral:7B") == "mistral:7b")
        #expect(ModelName.normalize("registry.ollama.ai/library/mistral") == "mistral:latest")
        #expect(ModelName.normalize("hf.co/user/repo:Q4") == "hf.co/user/repo:q4")
    }
}
