@testable import Tollgate
import TollgateIO
import TollgateTestSupport
import Testing

private let t0: UInt64 = 1_760_000_000_000

@Suite("Shared: SharedLeases (sorted-set in-flight slots)", .enabled(if: RedisServerProcess.available, "redis-server not installed (apt-get install redis-server)"))
struct SharedLeasesTests {
    func settings(perUser: Int, global: Int, leaseMillis: UInt64 = 30_000) -> SharedLeases.Settings {
        var s = SharedLeases.Settings()
        s.perUser = perUser
        s.global = global
        s.leaseMillis = leaseMillis
        return s
    }

    func acquire(_ leases: SharedLeases, on loop: TestLoop, _ user: String, at now: UInt64? = nil) async -> SharedLeases.Acquire? {
        await loop.call { done in leases.acquire(user: user, nowMillis: now) { done($0) } }
    }

    @Test func capsHoldAcrossTwoInstances() async throws {
        let server = try RedisServerProcess()
        let loopA = try TestLoop(), loopB = try TestLoop()
        let a = SharedLeases(client: try await makeClient(server.url(), on: loopA), settings: settings(perUser: 2, global: 3))
        let b = SharedLeases(client: try await makeClient(server.url(), on: loopB), settings: settings(perUser: 2, global: 3))
        guard case .acquired(let first)? = await acquire(a, on: loopA, "alice") else { Issue.record("alice 1"); return }
        guard case .acquired? = await acquire(a, on: loopA, "alice") else { Issue.record("alice 2"); return }
        #expect(await acquire(b, on: loopB, "alice") == .userFull(inFlight: 2))
        guard case .acquired? = await acquire(b, on: loopB, "bob") else { Issue.record("bob"); return }
        #expect(await acquire(a, on: loopA, "carol") == .globalFull(inFlight: 3))
        #expect(await acquire(b, on: loopB, "carol") == .globalFull(inFlight: 3))
        #expect(await loopA.call { done in a.release(first) { done($0) } } == .success(true))
        #expect(await loopA.call { done in a.release(first) { done($0) } } == .success(false))
        guard case .acquired? = await acquire(b, on: loopB, "carol") else { Issue.record("carol after a release"); return }
        #expect(await loopA.run { a.heldCount } == 1)
        #expect(await loopB.run { b.heldCount } == 2)
        await closeClient(a.client, on: loopA)
        await closeClient(b.client, on: loopB)
    }

    @Test func simultaneousAcquiresFromTwoInstancesNeverExceedTheGlobalCap() async throws {
        let server = try RedisServerProcess()
        let loops = [try TestLoop(), try TestLoop()]
        var all: [SharedLeases] = []
        for loop in loops {
            all.append(SharedLeases(client: try await makeClient(server.url(), on: loop), settings: settings(perUser: 3, global: 7)))
        }
        let pair = all
        let fire: @Sendable (Int) async -> [SharedLeases.Acquire] = { i in
            await loops[i].call { (done: @escaping @Sendable ([SharedLeases.Acquire]) -> Void) in
                nonisolated(unsafe) var got: [SharedLeases.Acquire] = []
                for n in 0..<20 {
                    pair[i].acquire(user: "u\(n % 4)") { got.append($0); if got.count == 20 { done(got) } }
                }
            } ?? []
        }
        async let x = fire(0)
        async let y = fire(1)
        let outcomes = await x + y
        let granted = outcomes.compactMap { if case .acquired(let l) = $0 { return l } else { return nil } }
        #expect(outcomes.count == 40)
        #expect(granted.count == 7)
        for user in 0..<4 { #expect(granted.filter { $0.user == "u\(user)" }.count <= 3) }
        #expect(Set(granted.map(\.id)).count == 7)
        for (i, loop) in loops.enumerated() { await closeClient(all[i].client, on: loop) }
    }

    @Test func anAbandonedLeaseExpiresAndAHeartbeatKeepsOneAlive() async throws {
        let server = try RedisServerProcess()
        let loopA = try TestLoop(), loopB = try TestLoop()
        let s = settings(perUser: 1, global: 1, leaseMillis: 60_000)
        let crashed = SharedLeases(client: try await makeClient(server.url(), on: loopA), settings: s)
        let survivor = SharedLeases(client: try await makeClient(server.url(), on: loopB), settings: s)
        // The first instance takes the only slot and then stops heartbeating (it "crashed").
        guard case .acquired? = await acquire(crashed, on: loopA, "alice", at: t0) else { Issue.record("first"); return }
        #expect(await acquire(survivor, on: loopB, "bob", at: t0 + 59_999) == .globalFull(inFlight: 1))
        // At its expiry the slot is free again.
        guard case .acquired? = await acquire(survivor, on: loopB, "bob", at: t0 + 60_000) else { Issue.record("after expiry"); return }
        // A heartbeat before expiry keeps it: extended to t0 + 114 000 + 60 000. (Leases are long because the sets' own
        // TTLs run on real time.)
        let beat = await loopB.call { done in survivor.heartbeat(nowMillis: t0 + 114_000) { done($0) } }
        #expect(beat == .success([]))
        #expect(await acquire(crashed, on: loopA, "alice", at: t0 + 150_000) == .globalFull(inFlight: 1))
        // A heartbeat after expiry reports the lease lost and drops it.
        let late = await loopB.call { done in survivor.heartbeat(nowMillis: t0 + 174_000) { done($0) } }
        guard case .success(let lost)? = late, lost.count == 1, lost[0].user == "bob" else { Issue.record("lost: \(String(describing: late))"); return }
        #expect(await loopB.run { survivor.heldCount } == 0)
        #expect(await loopB.run { survivor.counters.lost } == 1)
        guard case .acquired? = await acquire(crashed, on: loopA, "alice", at: t0 + 174_000) else { Issue.record("after loss"); return }
        await closeClient(crashed.client, on: loopA)
        await closeClient(survivor.client, on: loopB)
    }

    @Test func redisDownIsUnavailable() async throws {
        let server = try RedisServerProcess()
        let loop = try TestLoop()
        let redis = try await makeClient(server.url(), on: loop)
        let leases = SharedLeases(client: redis, settings: settings(perUser: 1, global: 1))
        guard case .acquired(let lease)? = await acquire(leases, on: loop, "alice") else { Issue.record("acquire"); return }
        server.kill()
        #expect(await loop.waitUntil { redis.health == .down })
        guard case .unavailable? = await acquire(leases, on: loop, "alice") else { Issue.record("expected unavailable"); return }
        guard case .failure? = await loop.call({ done in leases.release(lease) { done($0) } }) else { Issue.record("release"); return }
        #expect(await loop.run { leases.counters.unavailable } == 2)
        await closeClient(redis, on: loop)
    }
}
