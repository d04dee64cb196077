import Foundation
import Glibc
import Synchronization
@testable import Tollgate
import TollgateIO
import TollgateTestSupport
import Testing

/// Joins of the fleet's quota balances when Redis loses its data while settlements are on their way, when two
/// processes hold one member id, when balances were written by a release that kept no members, and when a
/// settlement's reply was lost for longer than its marker lives. Each was an attack's proof of concept: a charge
/// counted twice or lost.
@Suite("Shared: quota joins", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedQuotaJoinTests {
    /// 2026-03-15 12:00 UTC: far from any window's edge.
    static let noon: Int64 = 1_773_576_000
    static let limits = QuotaLimits(tokensPerDay: 100_000, requestsPerDay: 100)
    static let estimate = QuotaEstimate(promptTokens: 10, generates: false, maxPredict: nil)

    static func reserve(_ q: SharedQuotas, on loop: TestLoop, _ user: String = "alice") async -> SharedQuotas.Outcome? {
        await loop.call { done in q.reserve(user: user, limits: limits, estimate: estimate) { done($0) } }
    }

    static func grant(_ q: SharedQuotas, on loop: TestLoop) async throws -> QuotaReservation {
        guard case .decided(.granted(let r))? = await reserve(q, on: loop) else {
            throw RedisError.protocolViolation("not granted")
        }
        return r
    }

    /// alice's day balance (tokens, requests) straight from Redis.
    static func day(_ redis: BlockingRedis) throws -> (tokens: Int, requests: Int) {
        let windows = UTCWindows(unixSeconds: noon)
        let key = "tollgate:{quota}:day:\(windows.day):alice"
        let tokens = try redis.command(["HGET", key, "tokens"]).string.flatMap { Int($0) } ?? 0
        let requests = try redis.command(["HGET", key, "requests"]).string.flatMap { Int($0) } ?? 0
        return (tokens, requests)
    }

    static func blocking(_ server: RedisServerProcess) throws -> BlockingRedis {
        let configuration = RedisConfiguration(url: server.url())!
        return BlockingRedis(configuration: configuration, address: try configuration.resolve())
    }

    /// Waits (explicit polling, no time bound on the outcome) until alice's day balance is `expected`.
    static func settlesTo(_ redis: BlockingRedis, _ expected: Int) async throws -> (tokens: Int, requests: Int) {
        var b = try day(redis)
        for _ in 0..<300 where b.tokens != expected {
            try await Task.sleep(for: .milliseconds(10))
            b = try day(redis)
        }
        return b
    }

    /// A settlement kept for a retry (Redis refused it) is in the book; Redis then loses its data and another loop of
    /// the same process joins first, adding the book, charge included. The retried settlement charges nothing.
    @Test func aRetriedSettlementTheJoinAddedCountsOnce() async throws {
        let server = try RedisServerProcess()
        let redis = try Self.blocking(server)
        let loop = try TestLoop()
        let book = QuotaBook(clock: { Self.noon })
        let process = FleetProcess()
        let a = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon }, member: "aa",
                             book: book, process: process)
        let b = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon }, member: "aa",
                             book: book, process: process)
        let r = try await Self.grant(a, on: loop)
        #expect(try server.command("CONFIG", "SET", "maxmemory", "1") == "+OK")
        let settled = await loop.call { done in a.settle(r, .counted(100)) { done($0) } }
        #expect(try server.command("CONFIG", "SET", "maxmemory", "0") == "+OK")
        guard case .failure? = settled else { Issue.record("taken: \(String(describing: settled))"); return }
        _ = try server.command("FLUSHALL")
        // Loop B's reservation joins (with the book: 100 tokens, 1 request), then is decided.
        guard case .decided(.granted(let rb))? = await Self.reserve(b, on: loop) else { Issue.record("b"); return }
        #expect(try Self.day(redis) == (100, 1))
        let retried = await loop.call { done in
            a.retryUnsettled()
            a.balance(of: "alice") { done($0) }
        }
        guard case .success? = retried else { Issue.record("balance"); return }
        #expect(try Self.day(redis) == (100, 1), "the retried settlement counted again")
        #expect(await loop.run { a.unsettledCount } == 0)
        let last = await loop.call { done in b.settle(rb, .counted(5)) { done($0) } }
        let d = try Self.day(redis)
        #expect(d == (105, 2), "\(d) \(String(describing: last))")
        await closeClient(a.client, on: loop)
        await closeClient(b.client, on: loop)
    }

    /// A settlement that runs after Redis lost its data and before another loop's join, whose snapshot of the book
    /// was taken before this charge (modelled by a book of its own), is sent again after its own loop's join finds
    /// the member joined: it counts once instead of being lost.
    @Test func aSettlementRacingAnotherLoopsJoinIsNotLost() async throws {
        let server = try RedisServerProcess()
        let redis = try Self.blocking(server)
        let loop = try TestLoop()
        // One connection: the scripts run in the order sent.
        let client = try await makeClient(server.url(), on: loop)
        let process = FleetProcess()
        let a = SharedQuotas(client: client, clock: { Self.noon }, member: "aa", process: process)
        let b = SharedQuotas(client: client, clock: { Self.noon }, member: "aa", process: process)
        let r = try await Self.grant(a, on: loop)
        _ = try server.command("FLUSHALL")
        // B's reservation (then its join, with a snapshot without A's charge) goes first; A's settlement second,
        // answered "join first"; A's join then finds the member joined by B's.
        let outcome = await loop.call { (done: @escaping @Sendable (Bool) -> Void) in
            nonisolated(unsafe) var answered = 0
            b.reserve(user: "alice", limits: Self.limits, estimate: Self.estimate) { _ in
                answered += 1
                if answered == 2 { done(true) }
            }
            a.settle(r, .counted(100)) { _ in
                answered += 1
                if answered == 2 { done(true) }
            }
        }
        #expect(outcome == true)
        let b2 = try await Self.settlesTo(redis, 100)
        #expect(b2 == (100, 1), "the charge was lost or counted twice: \(b2)")
        await closeClient(client, on: loop)
    }

    /// Two running processes under one member id (a copied state directory): the second takes the member's entry
    /// over (as a restarted instance does), and the first then finds its entry named by another process and says so.
    @Test func aMemberIdUsedByAnotherRunningProcessIsReported() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let x = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon }, member: "cc",
                             process: FleetProcess())
        let y = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon }, member: "cc",
                             process: FleetProcess())
        let status = SharedLimitsStatus(address: "redis", workers: 1)
        await loop.run { x.status = status }
        _ = try await Self.grant(x, on: loop)
        _ = try await Self.grant(y, on: loop)
        #expect(await loop.waitUntil { y.process.claimed })
        #expect(await loop.run { x.counters.memberConflicts + y.counters.memberConflicts } == 0)
        _ = try await Self.grant(x, on: loop)
        #expect(await loop.run { x.counters.memberConflicts } == 1)
        #expect(status.quotaEventCount(.memberShared) == 1 && status.quotaEventCount(.joined) == 1)
        #expect(await loop.run { y.counters.memberConflicts } == 0)
        await closeClient(x.client, on: loop)
        await closeClient(y.client, on: loop)
    }

    /// A process restarting beside a Redis that kept its data takes its member's entry over at start-up: its own
    /// settlements count, and no conflict is seen.
    @Test func aRestartTakesTheEntryOverWithoutAConflict() async throws {
        let server = try RedisServerProcess()
        let redis = try Self.blocking(server)
        let loop = try TestLoop()
        let before = FleetProcess()
        #expect(try SharedQuotas.join([:], member: "dd", process: before, now: Self.noon, through: redis))
        let after = FleetProcess()
        #expect(try !SharedQuotas.join([:], member: "dd", process: after, now: Self.noon, through: redis))
        let q = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon }, member: "dd",
                             process: after)
        let r = try await Self.grant(q, on: loop)
        _ = await loop.call { done in q.settle(r, .counted(7)) { done($0) } }
        #expect(try Self.day(redis) == (7, 1))
        #expect(await loop.run { q.counters.memberConflicts } == 0)
        await closeClient(q.client, on: loop)
    }

    /// A settlement whose reply was lost longer ago than its marker lives is dropped, not sent again (it may have
    /// run: a second run would charge it twice).
    @Test func aSettlementUncertainForLongerThanItsMarkerIsDropped() async throws {
        let server = try RedisServerProcess()
        let redis = try Self.blocking(server)
        let pid = try #require(SharedQuotaHardeningTests.pid(ofRedisOn: server.port), "cannot find the redis-server process")
        let loop = try TestLoop()
        let now = Atomic<Int64>(Self.noon)
        let q = SharedQuotas(client: try await makeClient(server.url(), on: loop, commandTimeoutMillis: 250),
                             clock: { now.load(ordering: .relaxed) })
        let status = SharedLimitsStatus(address: "redis", workers: 1)
        await loop.run { q.status = status }
        let r = try await Self.grant(q, on: loop)
        Glibc.kill(pid, SIGSTOP)
        let settled = await loop.call { done in q.settle(r, .counted(10)) { done($0) } }
        Glibc.kill(pid, SIGCONT)
        guard case .failure(.timeout)? = settled else { Issue.record("not a timeout: \(String(describing: settled))"); return }
        #expect(await loop.waitUntil { q.client.health == .up })
        // It ran in Redis while stopped: charged once.
        #expect(try await Self.settlesTo(redis, 10) == (10, 1))
        now.store(Self.noon + SharedQuotas.markerMillis / 1000, ordering: .relaxed)
        await loop.run { q.retryUnsettled() }
        #expect(await loop.run { q.unsettledCount } == 0)
        #expect(await loop.run { q.counters.droppedSettlements } == 1)
        #expect(status.renderMetrics().contains("tollgate_redis_quota_events_total{event=\"settlement_dropped\"} 1\n"))
        #expect(try Self.day(redis) == (10, 1))
        await closeClient(q.client, on: loop)
    }

    /// Balances written by a release that kept no members (an upgrade) are adopted by the first join, and no
    /// instance adds its ledger on top; once Redis loses its data, joins add again.
    @Test func balancesWithoutMembersAreAdoptedNotAddedTo() throws {
        let server = try RedisServerProcess()
        let redis = try Self.blocking(server)
        let windows = UTCWindows(unixSeconds: Self.noon)
        _ = try redis.command(["HSET", "tollgate:{quota}:day:\(windows.day):alice", "tokens", "400", "requests", "4"])
        let first = ["alice": Spending(dayTokens: 100, monthTokens: 100, dayRequests: 1)]
        let second = ["alice": Spending(dayTokens: 300, monthTokens: 300, dayRequests: 3)]
        #expect(try SharedQuotas.join(first, member: "dd", process: FleetProcess(), now: Self.noon, through: redis))
        #expect(try SharedQuotas.join(second, member: "ee", process: FleetProcess(), now: Self.noon, through: redis))
        #expect(try Self.day(redis) == (400, 4))
        _ = try redis.command(["FLUSHALL"])
        #expect(try SharedQuotas.join(first, member: "dd", process: FleetProcess(), now: Self.noon, through: redis))
        #expect(try SharedQuotas.join(second, member: "ee", process: FleetProcess(), now: Self.noon, through: redis))
        #expect(try Self.day(redis) == (400, 4))
        // A third instance joining the rebuilt balances adds its own.
        #expect(try SharedQuotas.join(["alice": Spending(dayTokens: 1, monthTokens: 1, dayRequests: 1)], member: "ff",
                                      now: Self.noon, through: redis))
        #expect(try Self.day(redis) == (401, 5))
    }

    /// Redis's eviction policy is read at start-up (a policy that evicts can drop balances).
    @Test func theEvictionPolicyIsRead() throws {
        let server = try RedisServerProcess()
        let redis = try Self.blocking(server)
        #expect(SharedQuotas.evictionPolicy(through: redis) == "noeviction")
        _ = try redis.command(["CONFIG", "SET", "maxmemory-policy", "volatile-lru"])
        #expect(SharedQuotas.evictionPolicy(through: redis) == "volatile-lru")
    }
}
