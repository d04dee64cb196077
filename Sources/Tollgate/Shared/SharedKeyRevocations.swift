import TollgateIO

/// API-key revocations shared by a fleet through Redis: `tollgate keys revoke` adds the id to the set
/// `tollgate:keys:revoked` and then increments `tollgate:keys:revoked:version`; every server's key watcher reads the
/// version on each poll (one GET) and the set only when it moved, so a key revoked on one server's database is
/// refused by every server within a poll. Revocations only: a key is created in one server's database.
///
/// Runs on the key watcher's thread over a `BlockingRedis`. While Redis cannot answer, the revocations already
/// seen stay in force and each server's own database still decides; the outage is reported once.
public final class SharedKeyRevocations: FleetRevocations, @unchecked Sendable {
    /// The set of revoked ids.
    public static let setKey = "tollgate:keys:revoked"
    /// The counter that moves with every revocation.
    public static let versionKey = "tollgate:keys:revoked:version"

    private let redis: BlockingRedis
    // Confined to the watcher's thread.
    private var lastVersion: Int64?
    private var failing = false

    /// Revocations read through `redis`.
    public init(redis: BlockingRedis) {
        self.redis = redis
    }

    public func revokedSince() -> Set<String>? {
        do throws(RedisError) {
            let version = try redis.command(["GET", SharedKeyRevocations.versionKey])
            let now = version.string.flatMap { Int64($0) } ?? 0
            if failing {
                failing = false
                Diagnostics.info("keys: Redis answers again; fleet-wide revocations are followed again")
            }
            guard now != lastVersion else { return nil }
            let members = try redis.command(["SMEMBERS", SharedKeyRevocations.setKey])
            guard let elements = members.elements else { return nil }
            lastVersion = now
            return Set(elements.compactMap(\.string))
        } catch {
            if !failing {
                failing = true
                Diagnostics.warn("keys: cannot read fleet-wide revocations from Redis (\(error.description)); "
                                 + "this server's own revocations still apply")
            }
            return nil
        }
    }

    /// Publishes a revocation (the command line): the id into the set, then the version moved.
    public static func publish(_ id: String, through redis: BlockingRedis) throws(RedisError) {
        for command in [["SADD", setKey, id], ["INCR", versionKey]] {
            if case .error(let why) = try redis.command(command) { throw RedisError.protocolViolation(why) }
        }
    }
}
