import TollgateIO

/// Active health checks and model polls of every backend, on one event loop: every `health-interval`,
/// `GET /api/version` (a failure counts towards ejection, a success brings an ejected backend back), then
/// `/api/tags` (its models, and the entries Tollgate lists) and `/api/ps` (the ones loaded).
///
/// Loop thread only, except `checkNow`, which hops to the loop.
final class HealthChecker: @unchecked Sendable {
    let set: BackendSet
    let loop: EventLoop
    private let intervalNanos: UInt64
    private let timeoutNanos: UInt64
    /// Callbacks waiting for the round in progress to end.
    private var roundWaiters: [() -> Void] = []
    /// Callbacks that asked for a round while one was in progress: they get the next one, started after it.
    private var nextRoundWaiters: [() -> Void] = []
    /// Backends whose checks in this round have not finished (0: no round in progress).
    private var pending = 0
    private var stopped = false
    /// "backend path" for each poll whose failure was logged (once, until it reads again).
    private var catalogWarned: Set<String> = []

    init(set: BackendSet, loop: EventLoop, intervalSeconds: Double) {
        self.set = set
        self.loop = loop
        intervalNanos = UInt64(intervalSeconds * 1_000_000_000)
        // A check may take up to the interval, but at least a second and at most ten.
        timeoutNanos = UInt64(min(10, max(1, intervalSeconds)) * 1_000_000_000)
    }

    /// Starts the periodic checks (the first round at once). Loop thread.
    func start() {
        tick()
    }

    /// Stops scheduling rounds (checks in flight finish). Loop thread.
    func stop() {
        stopped = true
    }

    private func tick() {
        guard !stopped else { return }
        // A round still in progress (a backend slower than the interval) is not doubled.
        if pending == 0 { round() }
        loop.schedule(afterNanos: intervalNanos) { [self] in tick() }
    }

    /// Runs a round that starts after this call (any thread) and calls `done` on the loop once every backend's
    /// checks in it have finished. Once stopped, no round starts (its probes would outlive the loop's last pass):
    /// `done` is called at once; never when the loop itself has finished.
    func checkNow(_ done: @escaping @Sendable () -> Void) {
        loop.execute { [self] in
            if stopped {
                done()
            } else if pending == 0 {
                roundWaiters.append(done)
                round()
            } else {
                nextRoundWaiters.append(done)
            }
        }
    }

    /// Checks every backend.
    private func round() {
        pending = set.count
        for i in 0..<set.count { check(i) }
    }

    private func check(_ i: Int) {
        let address = set.addresses[i]
        BackendProbe.start(loop: loop, address: address, path: "/api/version", timeoutNanos: timeoutNanos) { [self] outcome in
            switch outcome {
            case .response(let status, _) where status == 200:
                set.recordSuccess(i)
                poll(i, address)
            case .response(let status, _):
                set.recordFailure(i, detail: "GET /api/version answered \(status)")
                finished(i)
            case .failed(let why):
                set.recordFailure(i, detail: "GET /api/version: \(why)")
                finished(i)
            }
        }
    }

    /// Reads the backend's models, then the loaded ones.
    private func poll(_ i: Int, _ address: UpstreamAddress) {
        BackendProbe.start(loop: loop, address: address, path: "/api/tags", timeoutNanos: timeoutNanos) { [self] tags in
            let models = modelList(tags, i, "/api/tags")
            if let models {
                if case .response(_, let body) = tags, let entries = ModelListScanner.entries(in: body) {
                    set.updateListing(i, entries)
                }
                set.updateModels(i, models: models, loaded: nil)
            }
            BackendProbe.start(loop: loop, address: address, path: "/api/ps", timeoutNanos: timeoutNanos) { [self] ps in
                if let loaded = modelList(ps, i, "/api/ps") { set.updateModels(i, models: nil, loaded: loaded) }
                finished(i)
            }
        }
    }

    /// The names in a poll's answer, or nil (the catalog stays as it was) with one warning until a poll reads again.
    private func modelList(_ outcome: BackendProbe.Outcome, _ i: Int, _ path: String) -> Set<String>? {
        let problem: String
        switch outcome {
        case .response(200, let body):
            if let names = ModelListScanner.names(in: body) {
                catalogWarned.remove("\(i) \(path)")
                return names
            }
            problem = "is not a model list"
        case .response(let status, _):
            problem = "answered \(status)"
        case .failed(let why):
            problem = "failed: \(why)"
        }
        if catalogWarned.insert("\(i) \(path)").inserted {
            Diagnostics.warn("backend \(set.addresses[i].hostHeader): GET \(path) \(problem); keeping its last known models")
        }
        return nil
    }

    private func finished(_ i: Int) {
        pending -= 1
        if pending == 0 { endRound() }
    }

    /// Answers the round's waiters and starts the round asked for meanwhile, unless the checker has stopped: then
    /// those waiters are answered too, without probing (as `checkNow` answers once stopped).
    private func endRound() {
        var waiters = roundWaiters
        roundWaiters = nextRoundWaiters
        nextRoundWaiters.removeAll()
        if stopped {
            waiters += roundWaiters
            roundWaiters.removeAll()
        } else if !roundWaiters.isEmpty {
            round()
        }
        for w in waiters { w() }
    }
}
