import TollgateIO

/// The quota balances at start-up: this process's book seeded from the usage ledger, and with `redis` the fleet's.
extension Server {
    /// Seeds the quota balances from `history` (the usage ledger), before `start`: this process's book, and with
    /// `redis` the fleet's balances (`SharedQuotas.join`: a Tollgate joining a running fleet adds nothing). Blocking:
    /// start-up only. The ledger's errors are thrown; a Redis that cannot be reached is reported, and this server
    /// joins when Redis answers.
    public func seedQuotas(from history: any SpendingHistory) throws {
        try quotaBook.seed(from: history)
        guard let shared = config.sharedLimits else { return }
        do {
            let redis = BlockingRedis(configuration: shared.redis, address: try shared.redis.resolve(),
                                      timeoutMillis: Int(max(1000, shared.redis.commandTimeoutMillis)))
            defer { redis.close() }
            let now = quotaBook.clock()
            let (spent, through) = quotaBook.spendingSnapshot(at: now)
            if try SharedQuotas.join(spent, member: fleetMember, lastCharge: through, now: now,
                                     through: redis), !spent.isEmpty {
                Diagnostics.info("quotas: added this server's spending in the current day and month (from its usage "
                                 + "ledger) to the fleet's balances in Redis at \(shared.redis.redactedURL)")
            }
            switch SharedQuotas.evictionPolicy(through: redis) {
            case "noeviction": break
            case let policy?:
                Diagnostics.warn("quotas: Redis at \(shared.redis.redactedURL) evicts keys when full "
                                 + "(maxmemory-policy \(policy)): quota balances can be evicted, and their users' "
                                 + "quotas start over; set maxmemory-policy noeviction")
            case nil:
                Diagnostics.warn("quotas: Redis at \(shared.redis.redactedURL) does not answer CONFIG GET "
                                 + "maxmemory-policy; make sure it is noeviction, or quota balances can be evicted")
            }
        } catch {
            Diagnostics.warn("quotas: cannot seed the fleet's balances in Redis at \(shared.redis.redactedURL) "
                             + "(\(error)); this server adds it when Redis answers")
        }
    }
}
