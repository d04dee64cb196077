import Foundation
import Synchronization
@testable import Tollgate
import TollgateIO
import TollgateTestSupport
import Testing

/// Attacks on the fleet's quota joins, kept as regression tests: each failed while its bug existed.
@Suite("Shared: quota join attacks", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedQuotaJoinAttackTests {
    static let noon = SharedQuotaJoinTests.noon

    /// Redis restarts empty while a request is in flight: its hold is gone, the join adds only what was spent (not
    /// what is held), and the heartbeat does not hold it again. A second request is then granted the whole quota
    /// while the first still runs; both settle and the user spent twice the day's quota.
    @Test func aHoldInFlightIsNotRebuiltAfterRedisLosesItsData() async throws {
        let server = try RedisServerProcess()
        let redis = try SharedQuotaJoinTests.blocking(server)
        let loop = try TestLoop()
        let limits = QuotaLimits(tokensPerDay: 1_000)
        let estimate = QuotaEstimate(promptTokens: 10, generates: true, maxPredict: nil)
        let q = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon }, member: "h1",
                             process: FleetProcess())
        func reserve() async -> SharedQuotas.Outcome? {
            await loop.call { done in q.reserve(user: "alice", limits: limits, estimate: estimate) { done($0) } }
        }
        guard case .decided(.granted(let first))? = await reserve() else { Issue.record("first not granted"); return }
        #expect(first.tokens == 1_000)
        _ = try server.command("FLUSHALL")
        // The request in flight is heartbeaten as it would be every lease/3.
        _ = await loop.call { done in q.heartbeat { done($0) } }
        let second = await reserve()
        if case .decided(.granted(let r))? = second {
            _ = await loop.call { done in q.settle(r, .counted(1_000)) { done($0) } }
        }
        _ = await loop.call { done in q.settle(first, .counted(1_000)) { done($0) } }
        let spent = try SharedQuotaJoinTests.day(redis).tokens
        #expect(spent <= 1_000, "alice spent \(spent) of a 1000-token day quota (second reservation: \(String(describing: second)))")
        await closeClient(q.client, on: loop)
    }

    /// A settlement kept for a retry whose charge a join added (entry `"<nonce y> <through>"`) is charged again when
    /// another process under the same member id (a copy of the state directory serving elsewhere, started while Redis was
    /// down, so it never claimed the entry) takes the entry over in between: the nonce no longer matches.
    @Test func aTakeOverBetweenAJoinAndARetryChargesTwice() async throws {
        let server = try RedisServerProcess()
        let redis = try SharedQuotaJoinTests.blocking(server)
        let loop = try TestLoop()
        let py = FleetProcess()
        #expect(try SharedQuotas.join([:], member: "both", process: py, now: Self.noon, through: redis))
        let y = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon }, member: "both",
                             book: QuotaBook(clock: { Self.noon }), process: py)
        // x: the same member id, its start-up join failed (Redis unreachable then), so it has not claimed the entry.
        let x = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon }, member: "both",
                             book: QuotaBook(clock: { Self.noon }), process: FleetProcess())
        let r = try await SharedQuotaJoinTests.grant(y, on: loop)
        // Redis refuses y's settlement (full): kept, in y's book as charge 1.
        #expect(try server.command("CONFIG", "SET", "maxmemory", "1") == "+OK")
        let settled = await loop.call { done in y.settle(r, .counted(100)) { done($0) } }
        #expect(try server.command("CONFIG", "SET", "maxmemory", "0") == "+OK")
        guard case .failure? = settled else { Issue.record("taken: \(String(describing: settled))"); return }
        _ = try server.command("FLUSHALL")
        // y's next request joins, adding its book (the kept charge included, through 1).
        _ = try await SharedQuotaJoinTests.grant(y, on: loop)
        #expect(try SharedQuotaJoinTests.day(redis) == (100, 1))
        // x's first request sees the entry name another process and takes it over ("<nonce x> 0").
        _ = try await SharedQuotaJoinTests.grant(x, on: loop)
        #expect(await loop.waitUntil { x.process.claimed })
        // y's heartbeat sends the kept settlement again.
        _ = await loop.call { done in
            y.retryUnsettled()
            y.balance(of: "alice") { done($0) }
        }
        let d = try SharedQuotaJoinTests.day(redis)
        #expect(d == (100, 1), "the kept settlement counted again: \(d)")
        await closeClient(x.client, on: loop)
        await closeClient(y.client, on: loop)
    }
}
