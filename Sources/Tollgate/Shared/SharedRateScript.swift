import TollgateIO

/// The Lua side of `SharedRateLimiter`: one GCRA decision per call, atomic inside Redis.
///
/// GCRA with emission interval `T` (µs per request) and tolerance `(burst + 1) · T` is nginx `limit_req` with
/// `nodelay`, restated: nginx's `excess` after a request is `TAT − now − T`, so `e = max(0, excess − elapsed + T)`
/// becomes `TAT' = max(TAT, now) + T`, and `e > burst` becomes `TAT' − now > (burst + 1) · T`. A rejected request
/// writes nothing (rejected requests do not count). The clock is Redis `TIME` truncated to whole milliseconds, as
/// nginx's cached time is, so every instance agrees on one clock; tests pass the time in ARGV[3] instead.
///
/// KEYS[1] = the key's TAT (µs since the epoch, as a decimal string; expires at the TAT, when it would equal "no
/// state"; with an injected clock a minute later, since Redis expires keys by its own clock and a test stalled
/// on a busy machine must not lose state its injected clock still needs). ARGV = T in µs, burst, optionally now in µs (or ""), and optionally "1" to peek: decide without counting.
/// Returns `{1, remaining, wait µs}` when admitted, `{0, wait µs}` when rejected, where `wait` is how long until a
/// request would be admitted. A request is admitted at `now` iff `now ≥ TAT − burst · T` (from `TAT + T − now ≤
/// (burst + 1) · T`), so the wait is `TAT − burst · T − now` with the stored TAT; after an admission that is the new
/// `TAT' = tat + T`, i.e. `used − burst · T`, positive exactly when `remaining` is 0, else 0: the wait the next
/// request would be told if it came at this same instant. (A peek returns the same numbers as if it had counted.)
enum SharedRateScript {
    static let gcra = RedisScript(#"""
        local T = tonumber(ARGV[1])
        local burst = tonumber(ARGV[2])
        local now = tonumber(ARGV[3])
        if not now then
            local time = redis.call('TIME')
            now = tonumber(time[1]) * 1000000 + math.floor(tonumber(time[2]) / 1000) * 1000
        end
        local tat = tonumber(redis.call('GET', KEYS[1]))
        if not tat or tat < now then tat = now end
        local used = tat + T - now
        if used > (burst + 1) * T then
            return {0, tat - burst * T - now}
        end
        local remaining = math.floor(((burst + 1) * T - used) / T)
        local wait = math.max(0, used - burst * T)
        if ARGV[4] == '1' then
            return {1, remaining, wait}
        end
        local ttl = math.ceil(used / 1000)
        if ARGV[3] and ARGV[3] ~= '' then ttl = ttl + 60000 end
        redis.call('SET', KEYS[1], string.format('%.0f', tat + T), 'PX', ttl)
        return {1, remaining, wait}
        """#)
}
