import TollgateIO

/// Membership in the fleet's quota balances (`SharedQuotaScript.join`): joining at start-up and again after Redis
/// lost its data, taking a member's entry over at a new start, and noticing another process on this member id.
extension SharedQuotas {
    /// Adds this process's spending in the current windows to the balances, unless this instance is a member
    /// already (one join at a time per instance; `done` gets whether it is a member now). Loop thread only.
    func join(takeOver: Bool = false, _ done: @escaping (Bool) -> Void) {
        if joinWaiters != nil {
            joinWaiters?.append(done)
            return
        }
        joinWaiters = [done]
        let now = clock()
        let (spent, through) = book.spendingSnapshot(at: now)
        // While running, Redis lost its data: nothing to adopt (a Tollgate of this release writes no balances
        // without joining).
        let (keys, args) = Self.joinCommand(spent, member: instanceID, entry: "\(nonce) \(through)",
                                            takeOver: takeOver ? "\(nonce) 0" : nil, adopt: false, now: now,
                                            prefix: settings.keyPrefix)
        client.evalScript(SharedQuotaScript.join, keys: keys, args: args) { [self] result in
            var ok = false
            if case .success(let reply) = result, let r = reply.elements, r.count == 2, let joined = r[0].int,
               let entry = r[1].string {
                ok = true
                if joined == 1 {
                    counters.joins += 1
                    process.claim()
                } else if takeOver {
                    process.claim()
                } else if !entry.hasPrefix(nonce + " ") {
                    // This process saw Redis without its id, and now another process holds it.
                    entryNamesAnotherProcess()
                }
            } else {
                counters.unavailable += 1
            }
            let waiting = joinWaiters ?? []
            joinWaiters = nil
            for w in waiting { w(ok) }
        }
    }

    /// The member's entry names another process: this process's first start-up join could not take it over (Redis
    /// was down), so it does now; after that, another running process holds this member id. `StateLock` keeps a
    /// second server off this machine's state directory, so that process runs on a copy of the directory elsewhere.
    func entryNamesAnotherProcess() {
        guard process.claimed else {
            join(takeOver: true) { _ in }
            return
        }
        counters.memberConflicts += 1
        if process.conflictNoticed() {
            Diagnostics.warn("quotas: fleet member id \(instanceID) is used by another running Tollgate too (a copy "
                             + "of this state directory serving elsewhere, such as a cloned machine or a restored "
                             + "backup): when Redis loses its data only one of the two adds its spending back; give "
                             + "each server its own state directory")
        }
    }

    /// The join script's keys and arguments for `spent` at `now`, as `member` with `entry` (`"<nonce> <through>"`),
    /// taking a member's entry over with `takeOver`; `adopt`: balances found without a members hash are adopted
    /// (start-up only).
    static func joinCommand(_ spent: [String: Spending], member: String, entry: String, takeOver: String?, adopt: Bool,
                            now: Int64, prefix: String) -> (keys: [[UInt8]], args: [[UInt8]]) {
        let windows = UTCWindows(unixSeconds: now)
        let dayTTL = (windows.dayEnd - now) * 1000 + windowMarginMillis
        let monthTTL = (windows.monthEnd - now) * 1000 + windowMarginMillis
        var keys: [[UInt8]] = [Array("\(prefix)joined".utf8)]
        let patterns = adopt ? ["\(prefix)day:\(windows.day):*", "\(prefix)month:\(windows.month):*"] : ["", ""]
        var args: [[UInt8]] = ([member, String(dayTTL), String(monthTTL), entry, takeOver ?? ""] + patterns)
            .map { Array($0.utf8) }
        for (user, s) in spent.sorted(by: { $0.key < $1.key })
        where s.dayTokens > 0 || s.dayRequests > 0 || s.monthTokens > 0 {
            let k = Self.keys(prefix: prefix, user: user, windows: windows)
            keys.append(k[2])
            keys.append(k[3])
            args.append(contentsOf: [s.dayTokens, s.dayRequests, s.monthTokens].map { Array(String(max(0, $0)).utf8) })
        }
        return (keys, args)
    }

    /// Joins the fleet's balances as `member` in `process` with `spent` (this instance's spending from its
    /// usage ledger, up to its book's charge numbered `lastCharge`) at start-up (`SharedQuotaScript.join`): a fresh or emptied
    /// Redis gets every instance's spending added as each joins; an instance restarting beside a Redis that kept its
    /// data is a member already and adds nothing, as its spending is in the balances (and takes the member's entry
    /// over: its charges from now on count as they settle); balances written by a release
    /// that kept no members are adopted as they are. Blocking: start-up only, before any loop runs. Returns whether
    /// it joined now.
    public static func join(_ spent: [String: Spending], member: String, process: FleetProcess = .current,
                            lastCharge: UInt64 = 0, now: Int64, through redis: BlockingRedis,
                            keyPrefix: String = Settings().keyPrefix) throws(RedisError) -> Bool {
        let (keys, args) = joinCommand(spent, member: member, entry: "\(process.nonce) \(lastCharge)",
                                       takeOver: "\(process.nonce) 0", adopt: true, now: now, prefix: keyPrefix)
        let command = ["EVAL", SharedQuotaScript.join.source, String(keys.count)]
            + (keys + args).map { String(decoding: $0, as: UTF8.self) }
        let reply = try redis.command(command)
        if let message = reply.errorMessage { throw RedisError.protocolViolation(message) }
        guard let r = reply.elements, r.count == 2, let joined = r[0].int else {
            throw RedisError.protocolViolation("unexpected script reply")
        }
        process.claim()
        return joined == 1
    }

    /// Redis's `maxmemory-policy`, or nil when it does not say (a managed Redis may refuse `CONFIG`). Balances are
    /// kept with expiry times: under any policy but `noeviction` a full Redis may evict them, and their users start
    /// over. Blocking: start-up only.
    public static func evictionPolicy(through redis: BlockingRedis) -> String? {
        guard let reply = try? redis.command(["CONFIG", "GET", "maxmemory-policy"]), let r = reply.elements,
              r.count == 2 else { return nil }
        return r[1].string
    }
}
