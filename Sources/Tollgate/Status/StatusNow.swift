/// The status page's "now": the figures a `/metrics` scrape renders (in flight, queued, backends and their health,
/// the certificate's expiry, counters since start) and the quota balances, read on a loop at request time. A
/// plain value, so that the page is rendered off the loop and tested without a server.
public struct StatusNow: Sendable, Equatable {
    /// When it was read, Unix ms.
    public var time: Int64
    public var version: String
    /// Whether Ollama accepts requests (the readiness check a scrape makes), and why not.
    public var upstreamUp: Bool
    public var upstreamDetail: String
    /// Every backend (a set), or the single upstream as one entry whose health is `upstreamUp`.
    public var backends: [Backend]
    /// Requests waiting for a backend of a set; nil for the single upstream.
    public var backendQueue: Int?
    /// Inference requests holding a slot and waiting for one; nil when `max-inflight` limits are off.
    public var inFlight: Int?
    public var queued: Int?
    public var openConnections: Int
    /// The serving certificate's notAfter (Unix seconds); nil without TLS.
    public var certificateExpiry: Int64?
    /// Requests since start by status class: index 0 is 1xx … index 4 is 5xx.
    public var requestsByClass: [Int]
    /// Mean time from request head to the upstream's response head since start, in seconds; nil before any.
    public var meanTTFBSeconds: Double?
    public var rateLimited: Int
    public var queueRejected: Int
    public var upstreamErrors: Int
    /// Usage rows written and dropped since start; nil when the ledger is off.
    public var ledgerWritten: Int?
    public var ledgerDropped: Int?
    /// Each user's spending against the quotas their policy sets, by name; empty when no policy sets a quota.
    public var quotas: [QuotaUse]

    /// One backend as the page lists it.
    public struct Backend: Sendable, Equatable {
        public var name: String
        public var healthy: Bool
        /// nil for the single upstream (its requests are not counted apart).
        public var inFlight: Int?
        public var requests: Int?
        public var ejections: Int?
        /// The models it has loaded, sorted; nil when unknown.
        public var loaded: [String]?

        public init(name: String, healthy: Bool, inFlight: Int? = nil, requests: Int? = nil, ejections: Int? = nil,
                    loaded: [String]? = nil) {
            self.name = name
            self.healthy = healthy
            self.inFlight = inFlight
            self.requests = requests
            self.ejections = ejections
            self.loaded = loaded
        }
    }

    /// One user's balances in the current UTC day and month, and the limits their policy sets (nil: none).
    public struct QuotaUse: Sendable, Equatable {
        public var user: String
        public var spent: Spending
        public var limits: QuotaLimits

        public init(user: String, spent: Spending, limits: QuotaLimits) {
            self.user = user
            self.spent = spent
            self.limits = limits
        }
    }

    public init(time: Int64, version: String = BuildInfo.version, upstreamUp: Bool, upstreamDetail: String = "",
                backends: [Backend] = [], backendQueue: Int? = nil, inFlight: Int? = nil, queued: Int? = nil,
                openConnections: Int = 0, certificateExpiry: Int64? = nil,
                requestsByClass: [Int] = [0, 0, 0, 0, 0], meanTTFBSeconds: Double? = nil, rateLimited: Int = 0,
                queueRejected: Int = 0, upstreamErrors: Int = 0, ledgerWritten: Int? = nil, ledgerDropped: Int? = nil,
                quotas: [QuotaUse] = []) {
        self.time = time
        self.version = version
        self.upstreamUp = upstreamUp
        self.upstreamDetail = upstreamDetail
        self.backends = backends
        self.backendQueue = backendQueue
        self.inFlight = inFlight
        self.queued = queued
        self.openConnections = openConnections
        self.certificateExpiry = certificateExpiry
        self.requestsByClass = requestsByClass
        self.meanTTFBSeconds = meanTTFBSeconds
        self.rateLimited = rateLimited
        self.queueRejected = queueRejected
        self.upstreamErrors = upstreamErrors
        self.ledgerWritten = ledgerWritten
        self.ledgerDropped = ledgerDropped
        self.quotas = quotas
    }

    /// The quota rows for `spent` under `policies`: each user who spent or has a policy line of their own, whose
    /// effective policy sets a quota (the users `tollgate_quota_used` has series for), by name.
    public static func quotaUses(spent: [String: Spending], policies: PolicyTable) -> [QuotaUse] {
        guard policies.sets({ $0.quotaLimits != QuotaLimits() }) else { return [] }
        var all = spent
        for user in policies.lines.keys where all[user] == nil { all[user] = Spending() }
        return all.keys.sorted().compactMap { user in
            let limits = policies.policy(for: user).quotaLimits
            guard limits != QuotaLimits() else { return nil }
            return QuotaUse(user: user, spent: all[user] ?? Spending(), limits: limits)
        }
    }
}

extension Worker {
    /// The figures of `StatusNow` as this worker sees them (the shared limiters, backends, metrics, ledger and
    /// quota book are process-wide). Loop thread.
    func statusNow(upstreamUp: Bool, detail: String) -> StatusNow {
        let totals = metrics?.totals() ?? MetricCounters()
        var byClass = [0, 0, 0, 0, 0]
        for family in totals.requests { for (k, n) in family.enumerated() { byClass[k] += n } }
        let backends: [StatusNow.Backend]
        if let set = peers.backendSet {
            backends = set.snapshot.map {
                StatusNow.Backend(name: $0.name, healthy: $0.healthy, inFlight: $0.inFlight, requests: $0.requests,
                                  ejections: $0.ejections, loaded: $0.loaded.sorted())
            }
        } else {
            backends = [StatusNow.Backend(name: config.upstream.hostHeader, healthy: upstreamUp)]
        }
        let dropped = ledger.map { $0.dropped.values.reduce(0, +) }
        return StatusNow(
            time: UsageClock.nowMillis(), upstreamUp: upstreamUp, upstreamDetail: detail, backends: backends,
            backendQueue: peers.backendSet?.queued,
            inFlight: concurrency.map { $0.inFlight + (shared?.slots?.heldTotal.value ?? 0) },
            queued: concurrency.map { shared?.slots?.queuedTotal.value ?? $0.queued },
            openConnections: totals.openConnections, certificateExpiry: metrics?.certificateExpirySeconds,
            requestsByClass: byClass,
            meanTTFBSeconds: totals.ttfbCount > 0 ? totals.ttfbSum / Double(totals.ttfbCount) : nil,
            rateLimited: totals.rateLimited, queueRejected: totals.queueRejected,
            upstreamErrors: totals.upstreamErrors.reduce(0, +), ledgerWritten: ledger?.written, ledgerDropped: dropped,
            quotas: quotaBook.map { StatusNow.quotaUses(spent: $0.spending(), policies: config.policies) } ?? [])
    }
}
