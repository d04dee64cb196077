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

    private struct State {
        var total = 0
        var perClient: [ClientKey: Int] = [:]
    }

    /// Connections open at most in all (0: no cap).
    let maxTotal: Int
    /// Connections open at most from one client key (0: no cap).
    let maxPerClient: Int
    private let ipv6PrefixLength: Int
    private let state = Mutex(State())

    init(maxTotal: Int, maxPerClient: Int, ipv6PrefixLength: Int = 64) {
        self.maxTotal = maxTotal
        self.maxPerClient = maxPerClient
        self.ipv6PrefixLength = ipv6PrefixLength
    }

    /// Connections counted now.
    var total: Int { state.withLock { $0.total } }

    /// Counts a new connection from `host` (nil: count it in the total only, e.g. a load balancer whose clients are
    /// not known yet), or refuses it.
    func admit(_ host: SocketAddress.Host?) -> Verdict {
        let key = host.map { ClientKey.of($0, ipv6PrefixLength: ipv6PrefixLength) }
        return state.withLock { s in
            if maxTotal > 0 && s.total >= maxTotal { return .overTotal }
            if let key, maxPerClient > 0 {
                let n = s.perClient[key, default: 0]
                if n >= maxPerClient { return .overClient }
                s.perClient[key] = n + 1
            }
            s.total += 1
            return .admitted(maxPerClient > 0 ? key : nil)
        }
    }

    /// Moves a counted connection to another client (its address from a PROXY protocol header); false, leaving it
    /// counted under `old`, when that client is at its cap.
    func move(_ old: ClientKey?, to host: SocketAddress.Host) -> (ok: Bool, key: ClientKey?) {
        guard maxPerClient > 0 else { return (true, nil) }
        let key = ClientKey.of(host, ipv6PrefixLength: ipv6PrefixLength)
        guard key != old else { return (true, old) }
        return state.withLock { s in
            let n = s.perClient[key, default: 0]
            if n >= maxPerClient { return (false, old) }
            s.perClient[key] = n + 1
            if let old { Self.decrement(&s, old) }
            return (true, key)
        }
    }

    /// Uncounts a connection admitted under `key`.
    func release(_ key: ClientKey?) {
        state.withLock { s in
            s.total -= 1
            if let key { Self.decrement(&s, key) }
        }
    }

    private static func decrement(_ s: inout State, _ key: ClientKey) {
        let n = s.perClient[key, default: 1] - 1
        if n <= 0 { s.perClient[key] = nil } else { s.perClient[key] = n }
    }
}
