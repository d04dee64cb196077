@testable import Tollgate
import Testing
import TollgateIO

/// The connection caps without sockets: the total, one address, an IPv6 /64 as one client, release, and a
/// connection moved to the client its PROXY protocol header names.
@Suite struct LimitsConnectionLimiterTests {
    static func host(_ text: String) -> SocketAddress.Host { SocketAddress(parsing: text)!.host }

    @Test func theTotalCapCountsEveryConnection() {
        let limiter = ConnectionLimiter(maxTotal: 2, maxPerClient: 0)
        let a = limiter.admit(Self.host("192.0.2.1:1"))
        let b = limiter.admit(nil)
        #expect(a == .admitted(nil) && b == .admitted(nil))
        #expect(limiter.admit(Self.host("192.0.2.2:1")) == .overTotal)
        limiter.release(nil)
        #expect(limiter.admit(Self.host("192.0.2.2:1")) == .admitted(nil))
        #expect(limiter.total == 2)
    }

    @Test func theClientCapCountsOneAddressAndOneIPv6Prefix() {
        let limiter = ConnectionLimiter(maxTotal: 0, maxPerClient: 2)
        let v4 = Self.host("192.0.2.1:1")
        guard case .admitted(let key) = limiter.admit(v4) else { Issue.record("refused"); return }
        _ = limiter.admit(v4)
        #expect(limiter.admit(v4) == .overClient)
        #expect(limiter.admit(Self.host("192.0.2.9:1")) != .overClient)
        limiter.release(key)
        #expect(limiter.admit(v4) != .overClient)
        // Two addresses of one /64 are one client; another /64 is another.
        _ = limiter.admit(Self.host("[2001:db8::1]:1"))
        _ = limiter.admit(Self.host("[2001:db8::2]:1"))
        #expect(limiter.admit(Self.host("[2001:db8::3]:1")) == .overClient)
        #expect(limiter.admit(Self.host("[2001:db8:0:1::1]:1")) != .overClient)
    }

    @Test func aConnectionMovesToTheClientItsHeaderNames() {
        let limiter = ConnectionLimiter(maxTotal: 0, maxPerClient: 1)
        let balancer = Self.host("10.0.0.1:1")
        guard case .admitted(let first) = limiter.admit(balancer) else { Issue.record("refused"); return }
        let moved = limiter.move(first, to: Self.host("192.0.2.1:1"))
        #expect(moved.ok)
        // The balancer's slot was given back; the named client's is taken.
        #expect(limiter.admit(balancer) != .overClient)
        #expect(limiter.move(nil, to: Self.host("192.0.2.1:1")).ok == false)
        limiter.release(moved.key)
        #expect(limiter.move(nil, to: Self.host("192.0.2.1:1")).ok)
    }

    /// Loops admit and release at once from their own threads: the caps hold under that race, and everything
    /// counted is uncounted in the end.
    @Test func capsHoldWhileManyThreadsAdmitAndRelease() async {
        // 8 threads try to hold 20 connections each from 4 clients: exactly the total cap (64) is admitted.
        let limiter = ConnectionLimiter(maxTotal: 64, maxPerClient: 1_000, shardCount: 4)
        let hosts = (0..<4).map { Self.host("192.0.2.\($0 + 1):1") }
        let held = await withTaskGroup(of: [ClientKey?].self) { group in
            for t in 0..<8 {
                group.addTask {
                    var keys: [ClientKey?] = []
                    for i in 0..<20 {
                        if case .admitted(let key) = limiter.admit(hosts[(t + i) % hosts.count]) { keys.append(key) }
                    }
                    return keys
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(held.count == 64)
        #expect(limiter.total == 64)
        await withTaskGroup(of: Void.self) { group in
            for chunk in stride(from: 0, to: held.count, by: 8) {
                let keys = Array(held[chunk..<min(chunk + 8, held.count)])
                group.addTask { for key in keys { limiter.release(key) } }
            }
        }
        #expect(limiter.total == 0)

        // The per-client cap under the same race: 8 threads, one client capped at 5.
        let capped = ConnectionLimiter(maxTotal: 0, maxPerClient: 5, shardCount: 4)
        let admitted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var n = 0
                    for _ in 0..<10 where capped.admit(hosts[0]) != .overClient { n += 1 }
                    return n
                }
            }
            return await group.reduce(0, +)
        }
        #expect(admitted == 5)
    }
}
