import TollgateIO

/// A per-key request rate shared by every Tollgate instance through Redis, with nginx `limit_req nodelay` decisions.
///
/// One instance per event loop, bound to that loop's `RedisClient`; loop thread only (marked `Sendable` only so it
/// can be captured by `EventLoop.execute` hops). Each decision is one `EVALSHA` of `SharedRateScript.gcra`, clocked by
/// Redis `TIME`. Rejections are cached locally until the moment Redis said a request could pass ("denied until t"),
/// so a flood from one key costs one Redis call per admission plus one per rejection streak. That cache is exact, not
/// an approximation: other instances can only push a key's next admission later, never earlier. Admissions are never
/// cached, batched or granted ahead.
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
    public let cacheCapacity: Int
    private var deniedUntil: [[UInt8]: UInt64] = [:]
    private let intervalArg: [UInt8]
    private let burstArg: [UInt8]
    /// Running totals.
    public private(set) var counters = Counters()

    /// A limiter at `ratePerSecond` (rounded to thousandths, as nginx and `RateLimitSettings` store it) with `burst`.
    public init(client: RedisClient, ratePerSecond: Double, burst: Int, keyPrefix: String = "tollgate:rl:", cacheCapacity: Int = 65_536) {
        self.client = client
        let scaled = (ratePerSecond * 1000).rounded()
        let thousandths = scaled.isFinite ? min(max(scaled, 1), 1e9) : 1
        intervalMicros = max(1, UInt64((1e9 / thousandths).rounded()))
        self.burst = max(0, min(burst, 1 << 30))
        self.keyPrefix = Array(keyPrefix.utf8)
        self.cacheCapacity = max(0, cacheCapacity)
        intervalArg = Array(String(intervalMicros).utf8)
        burstArg = Array(String(self.burst).utf8)
    }

    /// A limiter with the rate and burst of `settings` (exemptions and dry run stay with the caller).
    public convenience init(client: RedisClient, settings: RateLimitSettings, keyPrefix: String = "tollgate:rl:") {
        self.init(client: client, ratePerSecond: settings.ratePerSecond, burst: settings.burst, keyPrefix: keyPrefix)
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
        let sentAt = client.loop.now
        if nowMicros == nil, let until = deniedUntil[redisKey] {
            if until > sentAt {
                counters.cacheHits += 1
                completion(.decided(rejection(waitMicros: (until - sentAt + 999) / 1000)))
                return
            }
            deniedUntil.removeValue(forKey: redisKey)
        }
        counters.redisCalls += 1
        var args = [intervalArg, burstArg]
        if let nowMicros { args.append(Array(String(nowMicros).utf8)) } else if peek { args.append([]) }
        if peek { args.append(Array("1".utf8)) }
        client.evalScript(SharedRateScript.gcra, keys: [redisKey], args: args) { [self] result in
            switch result {
            case .failure(let error):
                counters.unavailable += 1
                completion(.unavailable(error))
            case .success(let reply):
                guard let pair = reply.elements, pair.count == 2, let flag = pair[0].int, let n = pair[1].int else {
                    counters.unavailable += 1
                    completion(.unavailable(.protocolViolation(reply.errorMessage ?? "unexpected script reply")))
                    return
                }
                if flag == 1 {
                    completion(.decided(.allowed(remaining: Int(max(0, n)))))
                } else {
                    let wait = UInt64(max(0, n))
                    if nowMicros == nil { remember(redisKey, until: sentAt &+ wait &* 1000) }
                    completion(.decided(rejection(waitMicros: wait)))
                }
            }
        }
    }

    /// A rejection `waitMicros` from now: milliseconds rounded up, Retry-After in whole seconds, at least 1.
    private func rejection(waitMicros: UInt64) -> RateDecision {
        let ms = (waitMicros + 999) / 1000
        return .rejected(retryAfterSeconds: max(1, Int((ms + 999) / 1000)), resetMillis: ms)
    }

    /// Caches a rejection until `until` (loop nanoseconds, counted from when the request was sent, so the cache
    /// ends no later than Redis's own answer would change).
    private func remember(_ key: [UInt8], until: UInt64) {
        if deniedUntil.count >= cacheCapacity {
            let now = client.loop.now
            deniedUntil = deniedUntil.filter { $0.value > now }
            if deniedUntil.count >= cacheCapacity { return }
        }
        deniedUntil[key] = until
    }

    /// Empties the "denied until" cache. Call when the connection comes back after an outage: the server may have
    /// restarted without its data, and then a cached denial would outlive the state it was computed from.
    public func forgetDenials() {
        deniedUntil.removeAll()
    }

    /// Keys in the "denied until" cache (expired ones included until the next sweep).
    public var cachedDenials: Int { deniedUntil.count }

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
