import TollgateIO

/// A per-key request rate shared by every Tollgate instance through Redis, with nginx `limit_req nodelay` decisions.
///
/// One instance per event loop, bound to that loop's `RedisClient`; loop thread only (marked `Sendable` only so it
/// can be captured by `EventLoop.execute` hops). Each decision is one `EVALSHA` of `SharedRateScript.gcra`, clocked by
/// Redis `TIME`. Rejections are cached until the moment Redis said a request could pass ("denied until t"), in a
/// `SharedDenials` table that all workers of the process share, so a rejection learned on one loop answers every
/// loop. An admission that leaves nothing (remaining 0) caches its "denied until" too: the script returns the wait
/// a rejection at that instant would have. When a cached denial ends, the loop's first check for the key calls and
/// the loop's other checks for it wait for that reply (most often it refills the cache) instead of calling too. So a
/// flood from one key costs one Redis call per admission plus, per admission, about one call per other instance
/// (or other loop) that has to learn the new denial. That cache is exact, not an approximation:
/// other instances can only push a key's next admission later, never earlier. Admissions are never cached, batched
/// or granted ahead.
public final class SharedRateLimiter: @unchecked Sendable {
    /// Running totals for metrics (loop thread).
    public struct Counters: Sendable, Equatable {
        /// Calls to `check`.
        public var checks: UInt64 = 0
        /// Decisions that went to Redis.
        public var redisCalls: UInt64 = 0
        /// Rejections answered from the local "denied until" cache.
        public var cacheHits: UInt64 = 0
        /// Checks answered `.unavailable`.
        public var unavailable: UInt64 = 0
        /// Checks that waited for this loop's call for the same key, sent when its denial ended, instead of calling.
        public var joined: UInt64 = 0
        /// All zero.
        public init() {}
    }

    /// The client this limiter talks through.
    public let client: RedisClient
    /// Emission interval in µs (1 / rate).
    let intervalMicros: UInt64
    /// Requests allowed above the rate at once.
    public let burst: Int
    /// Prepended to every key (`tollgate:rl:` by default).
    public let keyPrefix: [UInt8]
    /// Most keys kept in the "denied until" cache.
    public var cacheCapacity: Int { denials.capacity }
    /// The "denied until" cache, shared with the process's other limiters of the same kind.
    let denials: SharedDenials
    /// Checks waiting, per key, for the reply to this loop's call sent when the key's cached denial ended.
    private var waiting: [[UInt8]: [(peek: Bool, completion: (SharedRateOutcome) -> Void)]] = [:]
    private let intervalArg: [UInt8]
    private let burstArg: [UInt8]
    /// Running totals.
    public private(set) var counters = Counters()

    /// A limiter at `ratePerSecond` (rounded to thousandths, as nginx and `RateLimitSettings` store it) with `burst`,
    /// with its own "denied until" cache of `cacheCapacity` keys.
    public convenience init(client: RedisClient, ratePerSecond: Double, burst: Int, keyPrefix: String = "tollgate:rl:",
                            cacheCapacity: Int = 65_536) {
        self.init(client: client, ratePerSecond: ratePerSecond, burst: burst, keyPrefix: keyPrefix,
                  denials: SharedDenials(capacity: cacheCapacity))
    }

    /// As above, caching denials in `denials`, which every worker's limiter of the same rate, burst and key prefix
    /// may share (one per process): a denial is keyed by the Redis key only.
    init(client: RedisClient, ratePerSecond: Double, burst: Int, keyPrefix: String, denials: SharedDenials) {
        self.client = client
        let scaled = (ratePerSecond * 1000).rounded()
        let thousandths = scaled.isFinite ? min(max(scaled, 1), 1e9) : 1
        intervalMicros = max(1, UInt64((1e9 / thousandths).rounded()))
        self.burst = max(0, min(burst, 1 << 30))
        self.keyPrefix = Array(keyPrefix.utf8)
        self.denials = denials
        intervalArg = Array(String(intervalMicros).utf8)
        burstArg = Array(String(self.burst).utf8)
    }

    /// A limiter with the rate and burst of `settings` (exemptions and dry run stay with the caller).
    public convenience init(client: RedisClient, settings: RateLimitSettings, keyPrefix: String = "tollgate:rl:") {
        self.init(client: client, ratePerSecond: settings.ratePerSecond, burst: settings.burst, keyPrefix: keyPrefix)
    }

    /// A limiter with the rate and burst of `settings`, caching denials in the process-wide `denials`.
    convenience init(client: RedisClient, settings: RateLimitSettings, keyPrefix: String, denials: SharedDenials) {
        self.init(client: client, ratePerSecond: settings.ratePerSecond, burst: settings.burst, keyPrefix: keyPrefix,
                  denials: denials)
    }

    /// Counts one request for a client key (IPv4 address or IPv6 prefix). Loop thread only; `completion` runs on
    /// the loop thread, possibly before this returns when the cache answers.
    public func check(_ key: ClientKey, completion: @escaping (SharedRateOutcome) -> Void) {
        check(redisKey: keyPrefix + SharedRateLimiter.hex(key), nowMicros: nil, completion: completion)
    }

    /// Counts one request for any key (a user name, a failed-login key). Loop thread only.
    public func check(key: String, completion: @escaping (SharedRateOutcome) -> Void) {
        check(redisKey: keyPrefix + Array(key.utf8), nowMicros: nil, completion: completion)
    }

    /// Whether a request for `key` would be admitted now, without counting it (the failed-login throttle asks this
    /// before a password check, and counts only failures). Loop thread only; the cache answers as for `check`.
    public func peek(key: String, completion: @escaping (SharedRateOutcome) -> Void) {
        check(redisKey: keyPrefix + Array(key.utf8), nowMicros: nil, peek: true, completion: completion)
    }

    /// As `peek`, at an injected Redis-side time (tests).
    func peek(key: String, nowMicros: UInt64, completion: @escaping (SharedRateOutcome) -> Void) {
        check(redisKey: keyPrefix + Array(key.utf8), nowMicros: nowMicros, peek: true, completion: completion)
    }

    /// Counts one request at an injected Redis-side time (tests: nginx sequences without waiting). Bypasses the
    /// cache, which runs on the loop's clock.
    func check(key: String, nowMicros: UInt64, completion: @escaping (SharedRateOutcome) -> Void) {
        check(redisKey: keyPrefix + Array(key.utf8), nowMicros: nowMicros, completion: completion)
    }

    private func check(redisKey: [UInt8], nowMicros: UInt64?, peek: Bool = false,
                       completion: @escaping (SharedRateOutcome) -> Void) {
        counters.checks += 1
        decide(redisKey: redisKey, nowMicros: nowMicros, peek: peek, completion: completion)
    }

    private func decide(redisKey: [UInt8], nowMicros: UInt64?, peek: Bool,
                        completion: @escaping (SharedRateOutcome) -> Void) {
        // The key's denial just ended and this loop already asked: its reply (most often "admitted, nothing left",
        // or another instance's denial) decides this one too, from the cache, so wait for it rather than call.
        if nowMicros == nil, waiting[redisKey] != nil {
            counters.joined += 1
            waiting[redisKey]?.append((peek, completion))
            return
        }
        var sentAt = client.loop.now
        var leads = false
        if nowMicros == nil, let until = denials.until(redisKey) {
            // Another loop may have learned this denial after this loop's clock was read for its current iteration:
            // compare with the time now, so a stale loop clock never stretches a denial.
            sentAt = max(sentAt, Syscall.monotonicNanos())
            if until > sentAt {
                counters.cacheHits += 1
                completion(.decided(rejection(waitMicros: Self.clampedWait(Int64(clamping: until - sentAt) / 1000 + 1))))
                return
            }
            denials.forget(redisKey, ifUntil: until)
            waiting[redisKey] = []
            leads = true
        }
        counters.redisCalls += 1
        var args = [intervalArg, burstArg]
        if let nowMicros { args.append(Array(String(nowMicros).utf8)) } else if peek { args.append([]) }
        if peek { args.append(Array("1".utf8)) }
        client.evalScript(SharedRateScript.gcra, keys: [redisKey], args: args) { [self] result in
            answer(redisKey, nowMicros: nowMicros, peek: peek, sentAt: sentAt, result, completion)
            // The checks that waited are decided afresh, in order: from the cache this reply filled, or by calling.
            if leads, let queued = waiting.removeValue(forKey: redisKey) {
                for w in queued { decide(redisKey: redisKey, nowMicros: nil, peek: w.peek, completion: w.completion) }
            }
        }
    }

    private func answer(_ redisKey: [UInt8], nowMicros: UInt64?, peek: Bool, sentAt: UInt64,
                        _ result: Result<RESPValue, RedisError>, _ completion: (SharedRateOutcome) -> Void) {
        switch result {
        case .failure(let error):
            counters.unavailable += 1
            completion(.unavailable(error))
        case .success(let reply):
            guard let pair = reply.elements, pair.count >= 2, let flag = pair[0].int, let n = pair[1].int else {
                counters.unavailable += 1
                completion(.unavailable(.protocolViolation(reply.errorMessage ?? "unexpected script reply")))
                return
            }
            if flag == 1 {
                // Nothing left: the reply's third element is how long until the next request could pass, the
                // wait a rejection at this same Redis instant would report. A peek wrote nothing, so it caches
                // nothing.
                if n <= 0, !peek, nowMicros == nil, pair.count >= 3, let wait = pair[2].int, wait > 0 {
                    remember(redisKey, until: sentAt &+ Self.clampedWait(wait) &* 1000)
                }
                completion(.decided(.allowed(remaining: Int(max(0, n)))))
            } else {
                let wait = Self.clampedWait(n)
                if nowMicros == nil { remember(redisKey, until: sentAt &+ wait &* 1000) }
                completion(.decided(rejection(waitMicros: wait)))
            }
        }
    }

    /// The longest wait Tollgate believes from Redis: a day. A reply is a number from the network, so it is kept
    /// in a range where no arithmetic on it can overflow (a broken or hostile server could send anything).
    static let maxWaitMicros: Int64 = 86_400_000_000

    /// A wait in microseconds from a Redis reply, within 0...`maxWaitMicros`.
    static func clampedWait(_ micros: Int64) -> UInt64 {
        UInt64(min(max(0, micros), maxWaitMicros))
    }

    /// A rejection `waitMicros` from now: milliseconds rounded up, Retry-After in whole seconds, at least 1.
    private func rejection(waitMicros: UInt64) -> RateDecision {
        let ms = (waitMicros + 999) / 1000
        return .rejected(retryAfterSeconds: max(1, Int((ms + 999) / 1000)), resetMillis: ms)
    }

    /// Caches a rejection until `until` (loop nanoseconds, counted from when the request was sent, so the cache
    /// ends no later than Redis's own answer would change).
    private func remember(_ key: [UInt8], until: UInt64) {
        denials.remember(key, until: until, now: client.loop.now)
    }

    /// Empties the "denied until" cache, for every limiter sharing it. Call when the connection comes back after an
    /// outage: the server may have restarted without its data, and then a cached denial would outlive the state it
    /// was computed from.
    public func forgetDenials() {
        denials.removeAll()
    }

    /// Keys in the "denied until" cache (expired ones included until the next sweep).
    public var cachedDenials: Int { denials.count }

    /// 32 lower-case hex digits of the key's 128 bits (IPv4 as `::ffff:a.b.c.d`).
    static func hex(_ key: ClientKey) -> [UInt8] {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for word in [key.bits.hi, key.bits.lo] {
            for shift in stride(from: 60, through: 0, by: -4) { out.append(digits[Int(word >> UInt64(shift) & 15)]) }
        }
        return out
    }
}
