import Synchronization
import TollgateIO

/// Caps on open client connections, in total and per client address (an IPv4 address, an IPv6 /64), shared by
/// every worker (the kernel spreads one client's connections over all loops).
///
/// A connection counts from accept to close, idle keep-alive ones included: what the caps protect is descriptors
/// and memory, which an idle connection holds as much as a busy one. nginx's `limit_conn` counts a connection only
/// while it has a request in processing and answers that request 503, so a flood of idle connections never reaches
/// it; answering would also cost Tollgate a TLS handshake per refused connection. Over a cap the new connection is
/// therefore closed at once, as HAProxy does with `tcp-request connection reject if { sc_conn_cur gt N }` and nginx
/// does when `worker_connections` run out; every refusal is counted in `tollgate_connections_refused_total`.
final class ConnectionLimiter: Sendable {
    /// The outcome of `admit`.
    enum Verdict: Equatable {
        /// Counted under this key (nil: counted in the total only); release it with `release`.
        case admitted(ClientKey?)
        case overTotal
        case overClient
    }

    /// One lock and table of per-client counts, padded so neighbouring shards do not share a cache line.
    private final class Shard: Sendable {
        let counts = Mutex<[ClientKey: Int]>([:])
        private let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// Connections open at most in all (0: no cap).
    let maxTotal: Int
    /// Connections open at most from one client key (0: no cap).
    let maxPerClient: Int
    private let ipv6PrefixLength: Int
    /// Every loop counts every connection it accepts and closes: the total is one atomic counter and the
    /// per-client counts are split over shards by the key's hash, so loops taking connections from different
    /// clients take different locks (one lock for all made it a point of contention on many cores).
    private let totalCount = Atomic<Int>(0)
    private let shards: [Shard]

    init(maxTotal: Int, maxPerClient: Int, ipv6PrefixLength: Int = 64, shardCount: Int = 16) {
        self.maxTotal = maxTotal
        self.maxPerClient = maxPerClient
        self.ipv6PrefixLength = ipv6PrefixLength
        shards = (0..<max(1, shardCount)).map { _ in Shard() }
    }

    /// Connections counted now.
    var total: Int { totalCount.load(ordering: .relaxed) }

    /// Counts a new connection from `host` (nil: count it in the total only, e.g. a load balancer whose clients are
    /// not known yet), or refuses it.
    func admit(_ host: SocketAddress.Host?) -> Verdict {
        let key = host.map { ClientKey.of($0, ipv6PrefixLength: ipv6PrefixLength) }
        guard takeTotal() else { return .overTotal }
        guard let key, maxPerClient > 0 else { return .admitted(nil) }
        guard increment(key) else {
            totalCount.subtract(1, ordering: .relaxed)
            return .overClient
        }
        return .admitted(key)
    }

    /// Moves a counted connection to another client (its address from a PROXY protocol header); false, leaving it
    /// counted under `old`, when that client is at its cap.
    func move(_ old: ClientKey?, to host: SocketAddress.Host) -> (ok: Bool, key: ClientKey?) {
        guard maxPerClient > 0 else { return (true, nil) }
        let key = ClientKey.of(host, ipv6PrefixLength: ipv6PrefixLength)
        guard key != old else { return (true, old) }
        // Counted under the new key first, then uncounted under the old (two shards, two locks, never both held):
        // for that moment the connection counts twice, which can only refuse, never admit, one too many.
        guard increment(key) else { return (false, old) }
        if let old { decrement(old) }
        return (true, key)
    }

    /// Uncounts a connection admitted under `key`.
    func release(_ key: ClientKey?) {
        totalCount.subtract(1, ordering: .relaxed)
        if let key { decrement(key) }
    }

    /// One more in the total unless it is at its cap.
    private func takeTotal() -> Bool {
        guard maxTotal > 0 else {
            totalCount.add(1, ordering: .relaxed)
            return true
        }
        var current = totalCount.load(ordering: .relaxed)
        while current < maxTotal {
            let (exchanged, original) = totalCount.compareExchange(expected: current, desired: current + 1,
                                                                    ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    private func increment(_ key: ClientKey) -> Bool {
        shard(for: key).counts.withLock { counts in
            let n = counts[key, default: 0]
            if n >= maxPerClient { return false }
            counts[key] = n + 1
            return true
        }
    }

    private func decrement(_ key: ClientKey) {
        shard(for: key).counts.withLock { counts in
            let n = counts[key, default: 1] - 1
            if n <= 0 { counts[key] = nil } else { counts[key] = n }
        }
    }

    private func shard(for key: ClientKey) -> Shard {
        shards.count == 1 ? shards[0] : shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
    }
}
