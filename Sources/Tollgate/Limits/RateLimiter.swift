import TollgateIO

/// Per-client request rate limit with nginx `limit_req` arithmetic, one bucket per client across all event loops.
///
/// Thread-safe and non-blocking beyond a short per-shard `Mutex` section; `check` allocates nothing except while a
/// shard's storage is still growing. Memory is bounded by `settings.maxKeys` with least-recently-used eviction per shard
/// (a single shard, so exact LRU, below 2048 keys; up to 64 shards above).
///
/// Memory per key, measured (resident set, 1 000 000 IPv4 keys, 64 shards): about 84 MB, i.e. ~84 bytes per key:
/// a 40-byte entry (16-byte key, 16-byte bucket, two 4-byte LRU links) plus the shard Dictionary's 16-byte key and
/// 4-byte index at ≤ 75 % load, both storages rounded up to powers of two. 100 000 keys (the default) ≈ 11 MB.
public final class RateLimiter: Sendable {
    /// The settings this limiter was built with.
    public let settings: RateLimitSettings
    let policy: RatePolicy
    private let buckets: ShardedBuckets<ClientKey>
    private let exempt: [CIDR]

    /// A limiter with the default shard count for `settings.maxKeys`.
    public convenience init(settings: RateLimitSettings) {
        self.init(settings: settings, shardCount: nil)
    }

    /// A limiter with an explicit shard count (tests use 1 for exact LRU order).
    init(settings: RateLimitSettings, shardCount: Int?) {
        self.settings = settings
        self.exempt = settings.exempt
        policy = RatePolicy(ratePerSecond: settings.ratePerSecond, burst: settings.burst, name: "default")
        buckets = ShardedBuckets(maxKeys: settings.maxKeys, shardCount: shardCount)
    }

    /// Counts one request from `host` at `nowMillis` (any monotonic millisecond clock, the same for all callers).
    ///
    /// `.exempt` for exempt blocks. In dry-run mode the decision is still reported truthfully (`.rejected`, state
    /// unchanged, as nginx's `limit_req_dry_run`); the caller logs it and lets the request through.
    public func check(_ host: SocketAddress.Host, nowMillis: UInt64) -> RateDecision {
        let bits = AddressBits(host: host)
        for block in exempt where block.contains(bits: bits) {
            return .exempt
        }
        let key = bits.isV4 ? ClientKey(bits: bits) : ClientKey(bits: bits.masked(prefixLength: settings.ipv6PrefixLength))
        return buckets.check(key, now: nowMillis, policy: policy)
    }

    /// The key `check` would count `host` under, or nil when `host` is exempt (the shared limiter's key).
    public func key(for host: SocketAddress.Host) -> ClientKey? {
        let bits = AddressBits(host: host)
        for block in exempt where block.contains(bits: bits) {
            return nil
        }
        return bits.isV4 ? ClientKey(bits: bits) : ClientKey(bits: bits.masked(prefixLength: settings.ipv6PrefixLength))
    }

    /// Counts one request for an already computed key (no exemption check).
    public func check(key: ClientKey, nowMillis: UInt64) -> RateDecision {
        buckets.check(key, now: nowMillis, policy: policy)
    }

    /// Whether `key` currently has a bucket (for tests and diagnostics).
    public func isTracking(_ key: ClientKey) -> Bool {
        buckets.contains(key)
    }

    /// Keys currently held (a snapshot over all shards).
    public var keyCount: Int { buckets.count }

    /// Whether rejections should only be logged.
    public var isDryRun: Bool { settings.dryRun }

    /// Response headers for `decision`, per draft-ietf-httpapi-ratelimit-headers-10:
    /// `RateLimit-Policy: "default";q=<burst>;w=<burst/rate seconds>` and `RateLimit: "default";r=<remaining>;t=<s>`.
    /// A rejection also gets `Retry-After: <retryAfterSeconds>` (so this is the full header set of a 429);
    /// an exempt request gets none. `t` is the seconds until the full burst is back (allowed) or the Retry-After
    /// value (rejected).
    public func headers(for decision: RateDecision) -> [(String, String)] {
        policy.headers(for: decision)
    }
}
