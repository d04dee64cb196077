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
/// A settlement Redis cannot take (the connection is down, or it answers with an error such as out of memory or
/// read-only) is kept, up to `maxUnsettled`, and sent again when the connection is back and at every heartbeat
/// (`retryUnsettled`): the user spent those tokens, and the hold it releases expires by itself meanwhile. A
/// settlement sent again after its reply was lost counts once: a marker per settlement, kept for `markerMillis`; one
/// whose reply was lost longer ago than that is dropped rather than risk charging it twice (counted in
/// `droppedSettlements`; the usage ledger still has it). If Redis fails after running a reservation but before its
/// reply arrived, that hold belongs to nobody until its deadline: the lease bounds every such leak.
///
/// A Redis that restarted empty answers "join first" (`SharedQuotaScript`): this instance adds what its process's
/// book knows it spent in the current windows (`QuotaBook.spendingSnapshot`) and retries, so the fleet's balances
/// become the sum of every instance's spending rather than zero. Each charge is in the book before its settlement is
/// sent, numbered: a settlement the join already added (whichever of the process's loops joined) charges nothing,
/// and one it did not is sent again after the join.
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
        /// Holds a heartbeat found gone (Redis lost its data) or expired (this instance was cut off longer than the
        /// lease), and held again for their requests still running.
        public var lost: UInt64 = 0
        /// Settlements dropped because too many were waiting for Redis.
        public var droppedSettlements: UInt64 = 0
        /// Times this instance added its spending to the balances of a Redis that had none of it (started empty).
        public var joins: UInt64 = 0
        /// Times Redis named another running process as this instance's member: two running Tollgates share one
        /// `fleet-member-id` (one state directory shared, or a copy of it).
        public var memberConflicts: UInt64 = 0
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
        /// The charge's number in this process's book (`QuotaBook.record`).
        let number: UInt64
        /// When (Unix seconds) a send of it first failed without saying whether Redis ran it (the connection was lost
        /// or timed out with it pending): its marker must still be there when it is sent again.
        var uncertainSince: Int64?
    }

    /// The client this talks through.
    public let client: RedisClient
    /// The settings this was built with.
    public let settings: Settings
    /// Unix seconds now: the windows and the holds' deadlines (the process's `QuotaBook` clock, so a fallback to it
    /// decides in the same windows).
    let clock: @Sendable () -> Int64
    /// This instance's persistent id in the members hash (`FleetMember`).
    let instanceID: String
    /// What this store's hold ids start with: the member id and a random part, since every loop of the process, and
    /// the process's next start, hold under the same member id (and a settlement's marker is named by its hold).
    let holdPrefix: String
    /// This process among every start of that instance: tells its own join from another's.
    let process: FleetProcess
    /// The process's nonce.
    var nonce: String { process.nonce }
    /// This process's book: what it adds when it joins, and where each settlement is charged before it is sent.
    let book: QuotaBook
    /// A join is on its way; what waits for it runs when it is answered.
    var joinWaiters: [(Bool) -> Void]?
    private var nextSerial: UInt64 = 0
    /// Holds of this instance's requests in flight: id → user.
    private var held: [String: HeldHold] = [:]

    /// A hold of this instance's request in flight: enough to hold it again where Redis lost it.
    struct HeldHold {
        var user: String
        var tokens: Int
        var day: Int64
        var month: Int64
    }
    private var unsettled: [Settlement] = []
    private var heartbeating = false
    /// Running totals.
    public internal(set) var counters = Counters() {
        didSet {
            guard let status else { return }
            if counters.joins > oldValue.joins { status.count(.joined) }
            if counters.droppedSettlements > oldValue.droppedSettlements { status.count(.settlementDropped) }
            if counters.memberConflicts > oldValue.memberConflicts { status.count(.memberShared) }
        }
    }
    /// Where the process's metrics count joins, dropped settlements and shared member ids (set by `SharedLimits`).
    var status: SharedLimitsStatus?

    /// The most settlements kept while Redis cannot take them.
    static let maxUnsettled = 10_000
    /// Window keys outlive their window by this long (a settlement retried just after midnight still lands).
    static let windowMarginMillis: Int64 = 3_600_000

    /// Quotas through `client` under `settings`, clocked by `clock` (Unix seconds), as fleet member `member` (nil: a
    /// random id, for an instance that keeps no state) in `process`, which adds what `book` spent when it joins
    /// (nil: a book of its own).
    public init(client: RedisClient, settings: Settings = Settings(), clock: @escaping @Sendable () -> Int64,
                member: String? = nil, book: QuotaBook? = nil, process: FleetProcess = .current) {
        self.client = client
        self.settings = settings
        self.clock = clock
        self.book = book ?? QuotaBook(clock: clock)
        self.process = process
        instanceID = member ?? FleetMember.random()
        holdPrefix = "\(instanceID):\(FleetMember.random()):"
    }

    /// A settlement's marker lives this long: a settlement whose reply was lost is sent again within it, or dropped.
    static let markerMillis: Int64 = 600_000

    /// Holds this instance's requests have in Redis now.
    public var heldCount: Int { held.count }

    /// Settlements waiting for Redis to come back.
    public var unsettledCount: Int { unsettled.count }

    /// Reserves for one request by `user` under `limits` (see `QuotaBook.reserve`: the same decisions, over the
    /// fleet's balance). Loop thread only; `completion` runs on the loop thread when Redis answers.
    public func reserve(user: String, limits: QuotaLimits, estimate: QuotaEstimate,
                        completion: @escaping (Outcome) -> Void) {
        reserve(user: user, limits: limits, estimate: estimate, joinFirst: true, completion: completion)
    }

    private func reserve(user: String, limits: QuotaLimits, estimate: QuotaEstimate, joinFirst: Bool,
                         completion: @escaping (Outcome) -> Void) {
        let now = clock()
        let windows = UTCWindows(unixSeconds: now)
        nextSerial += 1
        let hold = "\(holdPrefix)\(nextSerial)"
        func arg(_ v: Int?) -> [UInt8] { v.map { Array(String($0).utf8) } ?? [] }
        let args: [[UInt8]] = [arg(Int(now) * 1000), arg(Int(windows.day)), arg(Int(windows.month)),
                               arg(Int(settings.leaseMillis)), Array(hold.utf8), arg(limits.tokensPerDay),
                               arg(limits.tokensPerMonth), arg(limits.requestsPerDay), arg(estimate.promptTokens),
                               arg(estimate.generates ? 1 : 0), arg(estimate.maxPredict), Array(instanceID.utf8),
                               Array(nonce.utf8)]
        client.evalScript(SharedQuotaScript.reserve, keys: keys(user, windows) + [joinedKey], args: args) { [self] result in
            switch result {
            case .failure(let error):
                counters.unavailable += 1
                completion(.unavailable(error))
            case .success(let reply):
                if let first = reply.elements?.first?.int, first == -1, joinFirst {
                    // Redis has lost this instance's spending: add it, then decide.
                    join { [self] joined in
                        if joined {
                            reserve(user: user, limits: limits, estimate: estimate, joinFirst: false, completion: completion)
                        } else {
                            counters.unavailable += 1
                            completion(.unavailable(.protocolViolation("cannot join the fleet's quota balances")))
                        }
                    }
                    return
                }
                guard let r = reply.elements, r.count >= 4, let flag = r[0].int else {
                    counters.unavailable += 1
                    completion(.unavailable(.protocolViolation(reply.errorMessage ?? "unexpected script reply")))
                    return
                }
                if r.last?.int == 1 && (r.count == 5 || r.count == 7) { entryNamesAnotherProcess() }
                if flag == 1, let tokens = r[1].int, let cap = r[2].int, let capped = r[3].int {
                    counters.granted += 1
                    held[hold] = HeldHold(user: user, tokens: Int(tokens), day: windows.day, month: windows.month)
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

    /// Ends a reservation of this store: charges `charge` in the process's book (the local fallback's and a join's
    /// view of this instance's spending), then releases its hold in Redis and charges it there, in the windows it ends
    /// in. Loop thread only. If Redis cannot take it, it is kept and sent again when the connection is back.
    /// `completion` gets whether the hold was still held.
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
        // In the book first: a join from now on adds it, and the settlement's number says so.
        let number = book.record(user: reservation.user, charge, reserved: reservation.tokens)
        send(Settlement(hold: hold, user: reservation.user, tokens: tokens, counts: counts,
                        windows: UTCWindows(unixSeconds: clock()), number: number), joinFirst: true,
             completion: completion)
    }

    private func send(_ s: Settlement, joinFirst: Bool, completion: ((Result<Bool, RedisError>) -> Void)?) {
        let now = clock()
        if let since = s.uncertainSince, (now - since) * 1000 >= Self.markerMillis - 60_000 {
            // Its marker may be gone: sent again, it could count twice. The usage ledger keeps it.
            counters.droppedSettlements += 1
            completion?(.failure(.timeout))
            return
        }
        func ttl(_ end: Int64) -> [UInt8] {
            Array(String(end > now ? (end - now) * 1000 + Self.windowMarginMillis : 0).utf8)
        }
        let args: [[UInt8]] = [Array(s.hold.utf8), Array(String(s.tokens).utf8), Array((s.counts ? "1" : "0").utf8),
                               ttl(s.windows.dayEnd), ttl(s.windows.monthEnd), Array(instanceID.utf8),
                               Array(String(Self.markerMillis).utf8), Array(nonce.utf8),
                               Array(String(s.number).utf8)]
        let keys = keys(s.user, s.windows) + [joinedKey, Array("\(settings.keyPrefix)settled:\(s.hold)".utf8)]
        client.evalScript(SharedQuotaScript.settle, keys: keys, args: args) { [self] result in
            var failure: RedisError?
            var kept = s
            switch result {
            case .failure(let error):
                failure = error
                switch error {
                case .timeout, .connectionLost, .protocolViolation:
                    // Redis may have run it: the marker decides when it is sent again.
                    kept.uncertainSince = s.uncertainSince ?? now
                case .notConnected, .setupRefused, .backlogFull, .closed:
                    break
                }
            case .success(let reply):
                if let message = reply.errorMessage {
                    // Out of memory, read-only, loading: the connection stays up, so the heartbeat sends it again.
                    failure = .protocolViolation(message)
                } else if reply.int == -1 {
                    // Redis lost its data. This process's join adds what its book spent: this charge too if the join's
                    // snapshot came after it (then it answers 3 when sent again), or it counts when sent again.
                    guard joinFirst else {
                        failure = .protocolViolation("not a member of the fleet's quota balances after joining")
                        break
                    }
                    join { [self] joined in
                        if joined {
                            send(s, joinFirst: false, completion: completion)
                        } else {
                            keep(s)
                            completion?(.failure(.protocolViolation("cannot join the fleet's quota balances")))
                        }
                    }
                    return
                } else {
                    completion?(.success(reply.int == 1))
                    return
                }
            }
            counters.unavailable += 1
            keep(kept)
            completion?(.failure(failure ?? .protocolViolation("unexpected script reply")))
        }
    }

    /// Keeps `s` to send again (`retryUnsettled`), up to `maxUnsettled`.
    private func keep(_ s: Settlement) {
        if unsettled.count < Self.maxUnsettled {
            unsettled.append(s)
        } else {
            counters.droppedSettlements += 1
        }
    }

    /// The members hash's key.
    private var joinedKey: [UInt8] { Array("\(settings.keyPrefix)joined".utf8) }

    /// Sends the settlements Redis could not take again (the connection is back). Loop thread only.
    public func retryUnsettled() {
        let waiting = unsettled
        unsettled.removeAll()
        for s in waiting { send(s, joinFirst: true, completion: nil) }
    }

    /// The same reservation holding a smaller generation cap, `predict`: the difference is released in Redis
    /// (without waiting: until it lands the hold is larger than needed, which only ever refuses, never overshoots).
    public func shrink(_ reservation: QuotaReservation, toPredict predict: Int) -> QuotaReservation {
        guard let hold = reservation.hold, let cap = reservation.predictCap, predict < cap else { return reservation }
        let release = cap - max(0, predict)
        let windows = UTCWindows(unixSeconds: clock())
        held[hold]?.tokens = reservation.tokens - release
        client.evalScript(SharedQuotaScript.shrink, keys: Array(keys(reservation.user, windows)[0..<2]),
                          args: [Array(hold.utf8), Array(String(release).utf8)]) { [self] result in
            if case .failure = result { counters.unavailable += 1 }
        }
        return QuotaReservation(user: reservation.user, tokens: reservation.tokens - release, predictCap: max(0, predict),
                                capped: false, day: reservation.day, month: reservation.month, hold: hold)
    }

    /// Extends every hold of this instance by `leaseMillis` from now in one script. `completion` gets how many were
    /// found already expired (their requests go on; their settlements still charge, and release nothing).
    /// Holds are sent in scripts of at most `heartbeatBatch` (a reply stays well within what the client parses).
    public func heartbeat(completion: ((Result<Int, RedisError>) -> Void)? = nil) {
        let all = Array(held)
        guard !all.isEmpty else { completion?(.success(0)); return }
        let windows = UTCWindows(unixSeconds: clock())
        var remaining = (all.count + Self.heartbeatBatch - 1) / Self.heartbeatBatch
        var lostTotal = 0
        var firstError: RedisError?
        for start in stride(from: 0, to: all.count, by: Self.heartbeatBatch) {
            let holds = all[start..<min(all.count, start + Self.heartbeatBatch)]
            var keys: [[UInt8]] = []
            var args: [[UInt8]] = [Array(String(clock() * 1000).utf8), Array(String(settings.leaseMillis).utf8)]
            for (hold, h) in holds {
                keys.append(contentsOf: self.keys(h.user, windows)[0..<2])
                args.append(Array("\(hold) \(h.tokens) \(h.day) \(h.month)".utf8))
            }
            client.evalScript(SharedQuotaScript.heartbeat, keys: keys, args: args) { [self] result in
                switch result {
                case .failure(let error):
                    counters.unavailable += 1
                    firstError = firstError ?? error
                case .success(let reply):
                    // An error reply (or any other shape) says nothing about the holds: they are kept.
                    guard let flags = reply.elements, flags.count == holds.count else {
                        counters.unavailable += 1
                        firstError = firstError ?? .protocolViolation(reply.errorMessage ?? "unexpected script reply")
                        break
                    }
                    // 2: the hold was gone (Redis lost its data, or this instance was cut off past the lease) and
                    // is held again: the request is still running, and what it will charge stays reserved.
                    var lost = 0
                    for flag in flags where flag.int != 1 { lost += 1 }
                    lostTotal += lost
                    counters.lost += UInt64(lost)
                }
                remaining -= 1
                if remaining == 0 {
                    if let firstError { completion?(.failure(firstError)) } else { completion?(.success(lostTotal)) }
                }
            }
        }
    }

    /// Holds per heartbeat script.
    static let heartbeatBatch = 1000

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
            // Settlements Redis refused while the connection stayed up (out of memory, read-only).
            if !self.unsettled.isEmpty && self.client.health == .up { self.retryUnsettled() }
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
