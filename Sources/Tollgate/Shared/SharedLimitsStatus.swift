import Synchronization
import TollgateIO

/// Process-wide state of the Redis-shared limits: whether each worker's Redis connection is up, which limiters are
/// in fallback, and call/error totals. Thread-safe (atomics); every worker's `SharedLimits` reports here.
///
/// Fallback is logged once per process when a limiter enters it (the first worker to fall back) and once when it
/// ends (the last worker to recover), with the Redis address and the error.
public final class SharedLimitsStatus: Sendable {
    /// The Redis address as logged (password hidden).
    public let address: String
    private let workers: Int
    private let up = Atomic<Int>(0)
    /// Workers in fallback, per limiter (by `index`).
    private let inFallback = Mutex<[Int]>([0, 0, 0, 0])
    private let calls = Atomic<UInt64>(0)
    private let errors = Atomic<UInt64>(0)
    /// `QuotaEvent` counts, by `rawValue`.
    private let quotaEvents = Mutex<[UInt64]>(Array(repeating: 0, count: QuotaEvent.allCases.count))
    private let log: @Sendable (_ warning: Bool, _ message: String) -> Void

    /// Status for `workers` workers talking to `address`; `log` receives the fallback messages (tests capture them).
    public init(address: String, workers: Int,
                log: @escaping @Sendable (_ warning: Bool, _ message: String) -> Void = { warning, message in
                    if warning { Diagnostics.warn(message) } else { Diagnostics.info(message) }
                }) {
        self.address = address
        self.workers = max(1, workers)
        self.log = log
    }

    private func index(_ kind: SharedLimiterKind) -> Int {
        switch kind {
        case .rate: return 0
        case .login: return 1
        case .slots: return 2
        case .quota: return 3
        }
    }

    /// One worker's connection came up (true) or went away (false); call only on a change.
    func workerConnection(up isUp: Bool) {
        _ = up.wrappingAdd(isUp ? 1 : -1, ordering: .relaxed)
    }

    /// One worker's `kind` limiter entered fallback because of `error`; call only on a change.
    func enterFallback(_ kind: SharedLimiterKind, policy: SharedLimitsSettings.Fallback, error: RedisError) {
        let before = inFallback.withLock { counts in
            defer { counts[index(kind)] += 1 }
            return counts[index(kind)]
        }
        if before == 0 {
            log(true, "shared \(kind.rawValue) limits: Redis at \(address) is unavailable (\(error)); "
                + "falling back to \(policy.describe) until it answers again")
        }
    }

    /// One worker's `kind` limiter left fallback (Redis answered); call only on a change.
    func leaveFallback(_ kind: SharedLimiterKind) {
        let before = inFallback.withLock { counts in
            defer { counts[index(kind)] -= 1 }
            return counts[index(kind)]
        }
        if before == 1 {
            log(false, "shared \(kind.rawValue) limits: Redis at \(address) answers again; fallback ended")
        }
    }

    /// Counts one decision sent to Redis, and whether it failed.
    func countCall(failed: Bool) {
        calls.wrappingAdd(1, ordering: .relaxed)
        if failed { errors.wrappingAdd(1, ordering: .relaxed) }
    }

    /// What happened to the fleet's quota balances (`SharedQuotas`), counted for `/metrics`.
    enum QuotaEvent: Int, CaseIterable {
        /// This process added its spending to balances Redis had lost.
        case joined
        /// A settlement was dropped: too many waited for Redis, or its reply was lost longer ago than its marker lives.
        case settlementDropped
        /// Redis named another running process under this server's fleet member id.
        case memberShared

        var label: String {
            switch self {
            case .joined: return "joined"
            case .settlementDropped: return "settlement_dropped"
            case .memberShared: return "member_shared"
            }
        }
    }

    /// Counts one quota event.
    func count(_ event: QuotaEvent) {
        quotaEvents.withLock { $0[event.rawValue] += 1 }
    }

    /// How many times `event` happened.
    func quotaEventCount(_ event: QuotaEvent) -> UInt64 {
        quotaEvents.withLock { $0[event.rawValue] }
    }

    /// Whether any worker's `kind` limiter is in fallback now.
    public func isInFallback(_ kind: SharedLimiterKind) -> Bool {
        inFallback.withLock { $0[index(kind)] } > 0
    }

    /// Whether every worker's Redis connection is up.
    public var isUp: Bool { up.load(ordering: .relaxed) >= workers }

    /// Decisions sent to Redis so far.
    public var callCount: UInt64 { calls.load(ordering: .relaxed) }

    /// Decisions Redis could not answer (each one applied the fallback).
    public var errorCount: UInt64 { errors.load(ordering: .relaxed) }

    /// The Prometheus text for `tollgate_redis_*`.
    func renderMetrics() -> String {
        var s = "# HELP tollgate_redis_up Whether every worker's Redis connection is up (1) or not (0).\n"
        s += "# TYPE tollgate_redis_up gauge\ntollgate_redis_up \(isUp ? 1 : 0)\n"
        s += "# HELP tollgate_redis_fallback Whether a shared limiter is applying its fallback policy now.\n"
        s += "# TYPE tollgate_redis_fallback gauge\n"
        for kind in SharedLimiterKind.allCases {
            s += "tollgate_redis_fallback{limiter=\"\(kind.rawValue)\"} \(isInFallback(kind) ? 1 : 0)\n"
        }
        s += "# HELP tollgate_redis_calls_total Limit decisions sent to Redis.\n"
        s += "# TYPE tollgate_redis_calls_total counter\ntollgate_redis_calls_total \(callCount)\n"
        s += "# HELP tollgate_redis_errors_total Calls to Redis that failed (timed out, connection lost, refused); while a connection is known down no calls are made and tollgate_redis_up is 0.\n"
        s += "# TYPE tollgate_redis_errors_total counter\ntollgate_redis_errors_total \(errorCount)\n"
        s += "# HELP tollgate_redis_quota_events_total The fleet's quota balances: joins after Redis lost them, "
            + "settlements dropped, another running server seen under this one's fleet member id.\n"
        s += "# TYPE tollgate_redis_quota_events_total counter\n"
        for event in QuotaEvent.allCases {
            s += "tollgate_redis_quota_events_total{event=\"\(event.label)\"} \(quotaEventCount(event))\n"
        }
        return s
    }
}

extension SharedLimitsSettings.Fallback {
    /// For log lines: "local limits at 1/N of the fleet's", "no limits", "refusing with 503".
    var describe: String {
        switch self {
        case .local: return "local limits (the fleet's divided by fleet-size)"
        case .open: return "no limits (redis-fallback open)"
        case .closed: return "refusing requests with 503 (redis-fallback closed)"
        }
    }
}
