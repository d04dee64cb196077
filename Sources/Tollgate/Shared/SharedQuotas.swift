import TollgateIO

/// Token and request quotas shared by every Tollgate of a fleet: each user's balances live in Redis, and a
/// reservation and a settlement are each one script (`SharedQuotaScript`), atomic inside Redis, so concurrent
/// requests on any instance reserve from one balance and the fleet never overshoots.
///
/// One instance per event loop, bound to that loop's `RedisClient`; loop thread only (marked `Sendable` only so it
/// can be captured by `EventLoop.execute` hops). A reservation is a hold in Redis with a deadline `leaseMillis`
/// ahead; this instance extends the holds of its requests in flight with `heartbeat` (one script for all of them,
/// every lease/3 once `startHeartbeats` runs), so a request may run for as long as it runs, while the holds of a
/// Tollgate that died mid-request are released by the next reservation of their user within `leaseMillis`.
///
/// A settlement Redis cannot take (the connection is down) is kept, up to `maxUnsettled`, and sent again when the
/// connection is back (`retryUnsettled`): the user spent those tokens, and the hold it releases expires by itself
/// meanwhile. If Redis fails after running a reservation but before its reply arrived, that hold belongs to nobody
/// until its deadline: the lease bounds every such leak.
public final class SharedQuotas: @unchecked Sendable {
    /// Lease and key names.
    public struct Settings: Sendable, Equatable {
        /// A hold not extended for this long is released by the user's next reservation.
        public var leaseMillis: UInt64 = 30_000
        /// Keys are `<prefix>day:<day>:<user>`, `<prefix>month:<month>:<user>`, `<prefix>holds:<user>` and
        /// `<prefix>held:<user>`.
        public var keyPrefix = "tollgate:{quota}:"
        /// Defaults: 30 s leases.
        public init() {}
    }

    /// What `reserve` got.
    public enum Outcome: Sendable, Equatable {
        /// Redis decided (granted with a hold, or refused).
        case decided(QuotaDecision)
        /// Redis could not answer; nothing is held. The caller applies its fallback.
        case unavailable(RedisError)
    }

    /// Running totals (loop thread).
    public struct Counters: Sendable, Equatable {
        /// Reservations granted.
        public var granted: UInt64 = 0
        /// Reservations refused by a quota.
        public var refused: UInt64 = 0
        /// Reservations, settlements, shrinks or heartbeats Redis could not answer.
        public var unavailable: UInt64 = 0
        /// Held holds a heartbeat found already expired (this instance was cut off longer than the lease).
        public var lost: UInt64 = 0
        /// Settlements dropped because too many were waiting for Redis.
        public var droppedSettlements: UInt64 = 0
        /// All zero.
        public init() {}
    }

    /// A settlement to send (again): where, what, and the windows the request ended in.
    struct Settlement {
        let hold: String
        let user: String
        let tokens: Int
        let counts: Bool
        let windows: UTCWindows
    }

    /// The client this talks through.
    public let client: RedisClient
    /// The settings this was built with.
    public let settings: Settings
    /// Unix seconds now: the windows and the holds' deadlines (the process's `QuotaBook` clock, so a fallback to it
    /// decides in the same windows).
    let clock: @Sendable () -> Int64
    private let instanceID: String
    private var nextSerial: UInt64 = 0
    /// Holds of this instance's requests in flight: id → user.
    private var held: [String: String] = [:]
    private var unsettled: [Settlement] = []
    private var heartbeating = false
    /// Running totals.
    public private(set) var counters = Counters()

    /// The most settlements kept while Redis cannot take them.
    static let maxUnsettled = 10_000
    /// Window keys outlive their window by this long (a settlement retried just after midnight still lands).
    static let windowMarginMillis: Int64 = 3_600_000

    /// Quotas through `client` under `settings`, clocked by `clock` (Unix seconds).
    public init(client: RedisClient, settings: Settings = Settings(), clock: @escaping @Sendable () -> Int64) {
        self.client = client
        self.settings = settings
        self.clock = clock
        let digits = Array("0123456789abcdef")
        instanceID = String(Syscall.randomBytes(8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// Holds this instance's requests have in Redis now.
    public var heldCount: Int { held.count }

    /// Settlements waiting for Redis to come back.
    public var unsettledCount: Int { unsettled.count }

    /// Reserves for one request by `user` under `limits` (see `QuotaBook.reserve`: the same decisions, over the
    /// fleet's balance). Loop thread only; `completion` runs on the loop thread when Redis answers.
    public func reserve(user: String, limits: QuotaLimits, estimate: QuotaEstimate,
                        completion: @escaping (Outcome) -> Void) {
        let now = clock()
        let windows = UTCWindows(unixSeconds: now)
        nextSerial += 1
        let hold = "\(instanceID):\(nextSerial)"
        func arg(_ v: Int?) -> [UInt8] { v.map { Array(String($0).utf8) } ?? [] }
        let args: [[UInt8]] = [arg(Int(now) * 1000), arg(Int(windows.day)), arg(Int(windows.month)),
                               arg(Int(settings.leaseMillis)), Array(hold.utf8), arg(limits.tokensPerDay),
                               arg(limits.tokensPerMonth), arg(limits.requestsPerDay), arg(estimate.promptTokens),
                               arg(estimate.generates ? 1 : 0), arg(estimate.maxPredict)]
        client.evalScript(SharedQuotaScript.reserve, keys: keys(user, windows), args: args) { [self] result in
            switch result {
            case .failure(let error):
                counters.unavailable += 1
                completion(.unavailable(error))
            case .success(let reply):
                guard let r = reply.elements, r.count >= 4, let flag = r[0].int else {
                    counters.unavailable += 1
                    completion(.unavailable(.protocolViolation(reply.errorMessage ?? "unexpected script reply")))
                    return
                }
                if flag == 1, let tokens = r[1].int, let cap = r[2].int, let capped = r[3].int {
                    counters.granted += 1
                    held[hold] = user
                    completion(.decided(.granted(QuotaReservation(
                        user: user, tokens: Int(tokens), predictCap: cap < 0 ? nil : Int(cap), capped: capped == 1,
                        day: windows.day, month: windows.month, hold: hold))))
                } else if flag == 0, r.count >= 6, let refusal = Self.refusal(r, windows: windows, now: now) {
                    counters.refused += 1
                    completion(.decided(.refused(refusal)))
                } else {
                    counters.unavailable += 1
                    completion(.unavailable(.protocolViolation("unexpected script reply")))
                }
            }
        }
    }

    /// The refusal a script reply `{0, window, limit, remaining, in flight, needed}` describes, with the reset and
    /// window length of `windows` at `now`, as `QuotaBalance.reserve` words it.
    static func refusal(_ r: [RESPValue], windows: UTCWindows, now: Int64) -> QuotaRefusal? {
        guard let code = r[1].int, let limit = r[2].int, let remaining = r[3].int, let inFlight = r[4].int,
              let needed = r[5].int else { return nil }
        let window: QuotaWindow
        let reset: Int64
        let length: Int64
        switch code {
        case 1: (window, reset, length) = (.tokensPerDay, windows.dayEnd, windows.dayEnd - windows.dayStart)
        case 2: (window, reset, length) = (.tokensPerMonth, windows.monthEnd, windows.monthEnd - windows.monthStart)
        case 3: (window, reset, length) = (.requestsPerDay, windows.dayEnd, windows.dayEnd - windows.dayStart)
        default: return nil
        }
        return QuotaRefusal(window: window, limit: Int(limit), remaining: Int(remaining),
                            retryAfterSeconds: inFlight == 1 ? 1 : Int(max(1, reset - now)), windowSeconds: Int(length),
                            needed: needed < 0 ? nil : Int(needed), heldByRequestsInFlight: inFlight == 1)
    }

    /// Ends a reservation of this store: releases its hold and charges `charge` in the windows it ends in. Loop
    /// thread only. If Redis cannot take it, it is kept and sent again when the connection is back.
    public func settle(_ reservation: QuotaReservation, _ charge: QuotaCharge,
                       completion: ((Result<Bool, RedisError>) -> Void)? = nil) {
        guard let hold = reservation.hold else { return }
        held.removeValue(forKey: hold)
        let tokens: Int
        let counts: Bool
        switch charge {
        case .counted(let n): (tokens, counts) = (max(0, n), true)
        case .reservation: (tokens, counts) = (reservation.tokens, true)
        case .nothing: (tokens, counts) = (0, false)
        }
        send(Settlement(hold: hold, user: reservation.user, tokens: tokens, counts: counts,
                        windows: UTCWindows(unixSeconds: clock())), completion: completion)
    }

    private func send(_ s: Settlement, completion: ((Result<Bool, RedisError>) -> Void)?) {
        let now = clock()
        func ttl(_ end: Int64) -> [UInt8] {
            Array(String(end > now ? (end - now) * 1000 + Self.windowMarginMillis : 0).utf8)
        }
        let args: [[UInt8]] = [Array(s.hold.utf8), Array(String(s.tokens).utf8), Array((s.counts ? "1" : "0").utf8),
                               ttl(s.windows.dayEnd), ttl(s.windows.monthEnd)]
        client.evalScript(SharedQuotaScript.settle, keys: keys(s.user, s.windows), args: args) { [self] result in
            switch result {
            case .failure(let error):
                counters.unavailable += 1
                if unsettled.count < Self.maxUnsettled {
                    unsettled.append(s)
                } else {
                    counters.droppedSettlements += 1
                }
                completion?(.failure(error))
            case .success(let reply):
                completion?(.success(reply.int == 1))
            }
        }
    }

    /// Sends the settlements Redis could not take again (the connection is back). Loop thread only.
    public func retryUnsettled() {
        let waiting = unsettled
        unsettled.removeAll()
        for s in waiting { send(s, completion: nil) }
    }

    /// The same reservation holding a smaller generation cap, `predict`: the difference is released in Redis
    /// (without waiting: until it lands the hold is larger than needed, which only ever refuses, never overshoots).
    public func shrink(_ reservation: QuotaReservation, toPredict predict: Int) -> QuotaReservation {
        guard let hold = reservation.hold, let cap = reservation.predictCap, predict < cap else { return reservation }
        let release = cap - max(0, predict)
        let windows = UTCWindows(unixSeconds: clock())
        client.evalScript(SharedQuotaScript.shrink, keys: Array(keys(reservation.user, windows)[0..<2]),
                          args: [Array(hold.utf8), Array(String(release).utf8)]) { [self] result in
            if case .failure = result { counters.unavailable += 1 }
        }
        return QuotaReservation(user: reservation.user, tokens: reservation.tokens - release, predictCap: max(0, predict),
                                capped: false, day: reservation.day, month: reservation.month, hold: hold)
    }

    /// Extends every hold of this instance by `leaseMillis` from now in one script. `completion` gets how many were
    /// found already expired (their requests go on; their settlements still charge, and release nothing).
    public func heartbeat(completion: ((Result<Int, RedisError>) -> Void)? = nil) {
        let holds = Array(held)
        guard !holds.isEmpty else { completion?(.success(0)); return }
        let windows = UTCWindows(unixSeconds: clock())
        var keys: [[UInt8]] = []
        var args: [[UInt8]] = [Array(String(clock() * 1000).utf8), Array(String(settings.leaseMillis).utf8)]
        for (hold, user) in holds {
            keys.append(contentsOf: self.keys(user, windows)[0..<2])
            args.append(Array(hold.utf8))
        }
        client.evalScript(SharedQuotaScript.heartbeat, keys: keys, args: args) { [self] result in
            switch result {
            case .failure(let error):
                counters.unavailable += 1
                completion?(.failure(error))
            case .success(let reply):
                let flags = reply.elements ?? []
                var lost = 0
                for (i, hold) in holds.enumerated() where i >= flags.count || flags[i].int != 1 {
                    lost += 1
                    held.removeValue(forKey: hold.key)
                }
                counters.lost += UInt64(lost)
                completion?(.success(lost))
            }
        }
    }

    /// Heartbeats every `leaseMillis / 3` on the client's loop until `stopHeartbeats`. Loop thread only.
    public func startHeartbeats() {
        guard !heartbeating else { return }
        heartbeating = true
        scheduleHeartbeat()
    }

    /// Stops the periodic heartbeat after the next tick. Loop thread only.
    public func stopHeartbeats() { heartbeating = false }

    private func scheduleHeartbeat() {
        client.loop.schedule(afterNanos: max(1, settings.leaseMillis / 3) * 1_000_000) { [weak self] in
            guard let self, self.heartbeating else { return }
            self.heartbeat(completion: nil)
            self.scheduleHeartbeat()
        }
    }

    /// `user`'s fleet-wide balance now: spent and held in the day and month (tests, diagnostics). Loop thread only.
    public func balance(of user: String,
                        completion: @escaping (Result<(dayTokens: Int, monthTokens: Int, dayRequests: Int, held: Int, heldRequests: Int), RedisError>) -> Void) {
        let now = clock()
        let windows = UTCWindows(unixSeconds: now)
        let args = [String(now * 1000), String(windows.day), String(windows.month)].map { Array($0.utf8) }
        client.evalScript(SharedQuotaScript.balance, keys: keys(user, windows), args: args) { result in
            switch result {
            case .failure(let error): completion(.failure(error))
            case .success(let reply):
                let v = (reply.elements ?? []).map { Int($0.int ?? 0) }
                guard v.count == 5 else {
                    completion(.failure(.protocolViolation(reply.errorMessage ?? "unexpected script reply")))
                    return
                }
                completion(.success((v[0], v[1], v[2], v[3], v[4])))
            }
        }
    }

    /// The user's keys: holds, held, and the windows' balances.
    private func keys(_ user: String, _ windows: UTCWindows) -> [[UInt8]] {
        Self.keys(prefix: settings.keyPrefix, user: user, windows: windows)
    }

    /// holds, held, day and month keys of `user` in `windows` under `prefix`.
    static func keys(prefix: String, user: String, windows: UTCWindows) -> [[UInt8]] {
        ["\(prefix)holds:\(user)", "\(prefix)held:\(user)", "\(prefix)day:\(windows.day):\(user)",
         "\(prefix)month:\(windows.month):\(user)"].map { Array($0.utf8) }
    }
}

extension SharedQuotas {
    /// Seeds the fleet's balances with `spent` (this instance's usage ledger) where Redis has no balance yet for the
    /// current day or month (`SharedQuotaScript.seed`): a fresh or emptied Redis starts from what this Tollgate
    /// knows, and a Tollgate joining a running fleet adds nothing, as its spending is in the fleet's balance
    /// already. Blocking: start-up only, before any loop runs. Returns the windows written.
    public static func seed(_ spent: [String: Spending], now: Int64, through redis: BlockingRedis,
                            keyPrefix: String = Settings().keyPrefix) throws(RedisError) -> Int {
        let windows = UTCWindows(unixSeconds: now)
        let dayTTL = (windows.dayEnd - now) * 1000 + windowMarginMillis
        let monthTTL = (windows.monthEnd - now) * 1000 + windowMarginMillis
        var written = 0
        for (user, s) in spent.sorted(by: { $0.key < $1.key }) {
            let k = keys(prefix: keyPrefix, user: user, windows: windows).map { String(decoding: $0, as: UTF8.self) }
            let reply = try redis.command(["EVAL", SharedQuotaScript.seed.source, "2", k[2], k[3], String(s.dayTokens),
                                           String(s.dayRequests), String(s.monthTokens), String(dayTTL), String(monthTTL)])
            if let message = reply.errorMessage { throw RedisError.protocolViolation(message) }
            written += (reply.elements ?? []).reduce(0) { $0 + Int($1.int ?? 0) }
        }
        return written
    }
}
