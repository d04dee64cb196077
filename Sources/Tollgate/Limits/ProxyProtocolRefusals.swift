import Synchronization
import TollgateIO

/// Which peers have been logged as refused on a PROXY protocol listener, so each is logged once, not once per
/// connection: at most `capacity` addresses (IPv6 by /64), after which refusals are only counted, and that is said
/// once too.
///
/// Thread-safe; one per process (`shared`), used by every worker's loop.
final class ProxyProtocolRefusals: Sendable {
    /// The process's table.
    static let shared = ProxyProtocolRefusals()

    /// The most addresses remembered.
    let capacity: Int
    private let state = Mutex<(seen: Set<ClientKey>, full: Bool)>(([], false))

    init(capacity: Int = 1024) {
        self.capacity = capacity
    }

    /// True the first time `peer` (IPv6: its /64) is seen, while fewer than `capacity` are remembered; after that
    /// false, and the one call that finds the table full says so once.
    func firstTime(_ peer: SocketAddress.Host) -> Bool {
        let key = ClientKey.of(peer, ipv6PrefixLength: 64)
        let (first, nowFull): (Bool, Bool) = state.withLock { s in
            if s.seen.contains(key) || s.full { return (false, false) }
            if s.seen.count >= capacity {
                s.full = true
                return (false, true)
            }
            s.seen.insert(key)
            return (true, false)
        }
        if nowFull {
            Diagnostics.warn("more than \(capacity) peers refused on a PROXY protocol listener: later ones are "
                + "counted in tollgate_proxy_protocol_refused_total, not logged")
        }
        return first
    }
}
