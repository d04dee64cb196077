import Foundation
import Glibc
@testable import Tollgate
import TollgateIO
import TollgateTestSupport
import Testing

/// The fleet's quota balances when Redis misbehaves without dropping the connection (an error reply: out of memory,
/// read-only), stalls past the command timeout, or an instance holds more requests than one reply may carry. Each was
/// an attack's proof of concept: a settlement lost or charged twice, holds abandoned, a full Redis granting.
@Suite("Shared: quota balances when Redis misbehaves", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedQuotaHardeningTests {
    /// 2026-03-15 12:00 UTC: far from any window's edge.
    static let noon: Int64 = 1_773_576_000

    static func reserve(_ q: SharedQuotas, on loop: TestLoop, _ user: String, _ limits: QuotaLimits,
                        _ estimate: QuotaEstimate) async -> SharedQuotas.Outcome? {
        await loop.call { done in q.reserve(user: user, limits: limits, estimate: estimate) { done($0) } }
    }

    static func balance(_ q: SharedQuotas, on loop: TestLoop, _ user: String) async
        -> (dayTokens: Int, monthTokens: Int, dayRequests: Int, held: Int, heldRequests: Int)? {
        let r = await loop.call { done in q.balance(of: user) { done($0) } }
        guard case .success(let b)? = r else { return nil }
        return b
    }

    /// The pid of the redis-server listening on `port` (Redis rewrites its command line to
    /// `redis-server 127.0.0.1:<port>`), to stop and continue it.
    static func pid(ofRedisOn port: UInt16) -> pid_t? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = pid_t(entry),
                  let comm = FileManager.default.contents(atPath: "/proc/\(entry)/comm"),
                  String(decoding: comm, as: UTF8.self).hasPrefix("redis-server"),
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            if line.contains(":\(port) ") || line.hasSuffix(":\(port)") || line.contains("--port \(port) ") { return pid }
        }
        return nil
    }

    /// A full Redis (maxmemory under noeviction) refuses the reservation script up front (its first write is one
    /// Redis checks for memory), so the caller falls back instead of granting a request whose settlement Redis
    /// would then refuse.
    @Test func aFullRedisRefusesTheReservation() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let q = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon })
        let limits = QuotaLimits(requestsPerDay: 5)
        let estimate = QuotaEstimate(promptTokens: 10, generates: false, maxPredict: nil)
        // Joined while Redis had room.
        guard case .decided(.granted(let first))? = await Self.reserve(q, on: loop, "alice", limits, estimate) else {
            Issue.record("reserve"); return
        }
        _ = await loop.call { done in q.settle(first, .counted(10)) { done($0) } }
        #expect(try server.command("CONFIG", "SET", "maxmemory", "1") == "+OK")
        let full = await Self.reserve(q, on: loop, "alice", limits, estimate)
        #expect(try server.command("CONFIG", "SET", "maxmemory", "0") == "+OK")
        guard case .unavailable? = full else { Issue.record("granted or refused by a full Redis: \(String(describing: full))"); return }
        #expect(await Self.balance(q, on: loop, "alice")?.heldRequests == 0)
        await closeClient(q.client, on: loop)
    }

    /// A settlement Redis answers with an error reply is kept and sent again (at the next heartbeat, or here by
    /// hand): the user's spending reaches the balance once Redis takes writes again.
    @Test func aSettlementAnsweredWithAnErrorReplyIsKeptAndSentAgain() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let q = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon })
        let limits = QuotaLimits(tokensPerDay: 1000)
        let estimate = QuotaEstimate(promptTokens: 100, generates: true, maxPredict: 900)
        guard case .decided(.granted(let r))? = await Self.reserve(q, on: loop, "alice", limits, estimate) else {
            Issue.record("reserve"); return
        }
        #expect(try server.command("CONFIG", "SET", "maxmemory", "1") == "+OK")
        let settled = await loop.call { done in q.settle(r, .counted(1000)) { done($0) } }
        #expect(try server.command("CONFIG", "SET", "maxmemory", "0") == "+OK")
        guard case .failure? = settled else { Issue.record("taken as delivered: \(String(describing: settled))"); return }
        #expect(await loop.run { q.unsettledCount } == 1)
        await loop.run { q.retryUnsettled() }
        var b = await Self.balance(q, on: loop, "alice")
        for _ in 0..<300 where b?.dayTokens != 1000 {
            try await Task.sleep(for: .milliseconds(10))
            b = await Self.balance(q, on: loop, "alice")
        }
        #expect(b?.dayTokens == 1000 && b?.held == 0, "\(String(describing: b))")
        #expect(await loop.run { q.unsettledCount } == 0)
        await closeClient(q.client, on: loop)
    }

    /// A settlement whose reply timed out (Redis stalled) has run in Redis by the time it is sent again: the marker
    /// it leaves makes the second one count for nothing.
    @Test func aSettlementSentAgainAfterItsReplyTimedOutCountsOnce() async throws {
        let server = try RedisServerProcess()
        let pid = try #require(Self.pid(ofRedisOn: server.port), "cannot find the redis-server process")
        let loop = try TestLoop()
        let q = SharedQuotas(client: try await makeClient(server.url(), on: loop, commandTimeoutMillis: 250),
                             clock: { Self.noon })
        let limits = QuotaLimits(tokensPerDay: 100_000, requestsPerDay: 100)
        let estimate = QuotaEstimate(promptTokens: 10, generates: false, maxPredict: nil)
        guard case .decided(.granted(let r))? = await Self.reserve(q, on: loop, "alice", limits, estimate) else {
            Issue.record("reserve"); return
        }
        Glibc.kill(pid, SIGSTOP)
        let settled = await loop.call { done in q.settle(r, .counted(10)) { done($0) } }
        Glibc.kill(pid, SIGCONT)
        guard case .failure(.timeout)? = settled else { Issue.record("not a timeout: \(String(describing: settled))"); return }
        #expect(await loop.run { q.unsettledCount } == 1)
        #expect(await loop.waitUntil { q.client.health == .up })
        let again = await loop.call { done in
            q.retryUnsettled()
            // The balance script runs after the resent settlement on the same connection.
            q.balance(of: "alice") { done($0) }
        }
        guard case .success(let b)? = again else { Issue.record("balance: \(String(describing: again))"); return }
        #expect(b.dayRequests == 1 && b.dayTokens == 10, "\(b)")
        #expect(await loop.run { q.unsettledCount } == 0)
        await closeClient(q.client, on: loop)
    }

    /// A heartbeat answered with an error reply says nothing about the holds: they are kept and extended by the next
    /// heartbeat, so a running request's hold does not lapse and the quota is not spent twice.
    @Test func aHeartbeatAnsweredWithAnErrorReplyKeepsTheHolds() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let now = Clock(Self.noon)
        let q = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { now.value })
        let limits = QuotaLimits(requestsPerDay: 1)
        let estimate = QuotaEstimate(promptTokens: 10, generates: false, maxPredict: nil)
        guard case .decided(.granted(let running))? = await Self.reserve(q, on: loop, "alice", limits, estimate) else {
            Issue.record("reserve"); return
        }
        #expect(try server.command("CONFIG", "SET", "maxmemory", "1") == "+OK")
        let refused = await loop.call { done in q.heartbeat { done($0) } }
        #expect(try server.command("CONFIG", "SET", "maxmemory", "0") == "+OK")
        guard case .failure? = refused else { Issue.record("an error reply read as an answer: \(String(describing: refused))"); return }
        #expect(await loop.run { q.heldCount } == 1)
        now.value += 20
        #expect(await loop.call { done in q.heartbeat { done($0) } } == .success(0))
        now.value += 11
        guard case .decided(.refused)? = await Self.reserve(q, on: loop, "alice", limits, estimate) else {
            Issue.record("the running request's hold lapsed"); return
        }
        _ = await loop.call { done in q.settle(running, .counted(10)) { done($0) } }
        #expect(await Self.balance(q, on: loop, "alice")?.dayRequests == 1)
        await closeClient(q.client, on: loop)
    }

    /// More holds than one reply may carry (the client parses at most 4096 elements) are extended in batches.
    @Test func aHeartbeatOverMoreThan4096HoldsSucceeds() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let q = SharedQuotas(client: try await makeClient(server.url(), on: loop), clock: { Self.noon })
        let limits = QuotaLimits(tokensPerDay: 10_000_000)
        let estimate = QuotaEstimate(promptTokens: 10, generates: false, maxPredict: nil)
        let granted = await loop.call { (done: @escaping @Sendable (Int) -> Void) in
            nonisolated(unsafe) var n = 0, answered = 0
            for i in 0..<4097 {
                q.reserve(user: "u\(i % 50)", limits: limits, estimate: estimate) { outcome in
                    if case .decided(.granted) = outcome { n += 1 }
                    answered += 1
                    if answered == 4097 { done(n) }
                }
            }
        }
        #expect(granted == 4097)
        #expect(await loop.call { done in q.heartbeat { done($0) } } == .success(0))
        #expect(await loop.run { q.heldCount } == 4097)
        await closeClient(q.client, on: loop)
    }
}

/// A settable clock (Unix seconds) for `SharedQuotas`.
private final class Clock: @unchecked Sendable {
    private let lock = NSLock()
    private var now: Int64
    init(_ now: Int64) { self.now = now }
    var value: Int64 {
        get { lock.withLock { now } }
        set { lock.withLock { now = newValue } }
    }
}
