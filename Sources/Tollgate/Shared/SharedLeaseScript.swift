import TollgateIO

/// The Lua side of `SharedLeases`: in-flight slots as members of sorted sets scored by their expiry (ms since the
/// epoch, Redis `TIME`, or ARGV's injected clock in tests).
///
/// KEYS[1] is the global set, KEYS[2...] per-user sets; all share one `{hash tag}` so a Redis Cluster keeps them in one
/// slot. Each set's own TTL is refreshed to the lease time on every add or extension, so an idle fleet leaves nothing
/// behind. A member whose score has passed belongs to an instance that stopped heartbeating (crashed, or cut off
/// from Redis): the next acquire purges it, which is how a dead instance's slots come back.
enum SharedLeaseScript {
    /// ARGV: lease ms, per-user cap, global cap, lease id, [now ms]. Returns `{1, user count, global count}` with the
    /// lease added, or `{0, 1 | 2, count}`: the user (1) or everyone (2) is at the cap with `count` held.
    static let acquire = RedisScript(#"""
        local lease = tonumber(ARGV[1])
        local now = tonumber(ARGV[5])
        if not now then
            local time = redis.call('TIME')
            now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        end
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
        local user = redis.call('ZCARD', KEYS[2])
        if user >= tonumber(ARGV[2]) then return {0, 1, user} end
        local global = redis.call('ZCARD', KEYS[1])
        if global >= tonumber(ARGV[3]) then return {0, 2, global} end
        local expiry = now + lease
        redis.call('ZADD', KEYS[1], expiry, ARGV[4])
        redis.call('ZADD', KEYS[2], expiry, ARGV[4])
        redis.call('PEXPIRE', KEYS[1], lease)
        redis.call('PEXPIRE', KEYS[2], lease)
        return {1, user + 1, global + 1}
        """#)

    /// KEYS[1] global, KEYS[1 + i] the user set of lease i; ARGV: lease ms, now ms or "", then the lease ids.
    /// Extends every lease still held (purged ones are not brought back) and returns 1 or 0 per lease.
    static let heartbeat = RedisScript(#"""
        local lease = tonumber(ARGV[1])
        local now = tonumber(ARGV[2])
        if not now then
            local time = redis.call('TIME')
            now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        end
        local expiry = now + lease
        local held = {}
        for i = 2, #KEYS do
            local id = ARGV[i + 1]
            local score = tonumber(redis.call('ZSCORE', KEYS[1], id))
            if score and score > now then
                redis.call('ZADD', KEYS[1], expiry, id)
                redis.call('ZADD', KEYS[i], expiry, id)
                redis.call('PEXPIRE', KEYS[i], lease)
                held[i - 1] = 1
            else
                redis.call('ZREM', KEYS[1], id)
                redis.call('ZREM', KEYS[i], id)
                held[i - 1] = 0
            end
        end
        redis.call('PEXPIRE', KEYS[1], lease)
        return held
        """#)

    /// KEYS[1] global, KEYS[2] user; ARGV[1] lease id. Returns 1 if the lease was still held.
    static let release = RedisScript(#"""
        redis.call('ZREM', KEYS[2], ARGV[1])
        return redis.call('ZREM', KEYS[1], ARGV[1])
        """#)
}
