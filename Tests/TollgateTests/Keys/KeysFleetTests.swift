import Testing
import TollgateIO
import TollgateTestSupport
@testable import Tollgate

/// Revocations shared by a fleet through a real redis-server: one server's `keys revoke` reaches another server's
/// key ring on its watcher's next poll.
@Suite(.enabled(if: RedisServerProcess.available, "redis-server is not installed"))
struct KeysFleetTests {
    @Test func aRevocationPublishedOnceReachesEveryRing() throws {
        let server = try RedisServerProcess(password: "fleet-pw")
        let configuration = try #require(RedisConfiguration(url: server.url(password: "fleet-pw")))
        let address = try configuration.resolve()
        // Two servers of a fleet: each its own database with the same key (as after a copy), its own ring.
        let token = APIKeyToken.generate()
        let record = APIKey(id: token.id, user: "alice", hash: token.hash, created: 1)
        var rings: [KeyRing] = []
        var watchers: [KeyWatcher] = []
        for _ in 0..<2 {
            let store = InMemoryKeyStore()
            try store.insert(record)
            let ring = KeyRing()
            let fleet = SharedKeyRevocations(redis: BlockingRedis(configuration: configuration, address: address))
            watchers.append(try KeyWatcher(store: store, ring: ring, fleet: fleet, start: false))
            rings.append(ring)
        }
        defer { for w in watchers { w.stop() } }
        for w in watchers { w.refresh() }
        for ring in rings { #expect(ring.verify(token) == .valid(KeyGrant(id: token.id, user: "alice", models: nil))) }
        // The command line publishes through a connection of its own.
        let cli = BlockingRedis(configuration: configuration, address: address)
        try SharedKeyRevocations.publish(token.id, through: cli)
        #expect(try cli.command(["SISMEMBER", SharedKeyRevocations.setKey, token.id]).int == 1)
        cli.close()
        for w in watchers { w.refresh() }
        for ring in rings { #expect(ring.verify(token) == .revoked(user: "alice")) }
    }

    @Test func aWrongPasswordOrADeadRedisIsAnErrorNotAHang() throws {
        let server = try RedisServerProcess(password: "fleet-pw")
        let wrong = try #require(RedisConfiguration(url: server.url(password: "not-it")))
        let client = BlockingRedis(configuration: wrong, address: try wrong.resolve())
        #expect(throws: RedisError.self) { try client.command(["PING"]) }
        server.kill()
        let right = try #require(RedisConfiguration(url: server.url(password: "fleet-pw")))
        let dead = BlockingRedis(configuration: right, address: try right.resolve())
        #expect(throws: RedisError.self) { try dead.command(["PING"]) }
        // A fleet reader over a dead Redis answers "nothing new" and leaves the ring alone.
        #expect(SharedKeyRevocations(redis: dead).revokedSince() == nil)
    }
}
