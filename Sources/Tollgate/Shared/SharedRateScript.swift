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
/// state"). ARGV = T in µs, burst, optionally now in µs (or ""), and optionally "1" to peek: decide without counting.
/// Returns `{1, remaining}` when admitted, `{0, wait µs}` when rejected, where `wait` is how long until a request
/// would be admitted.
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
        if ARGV[4] == '1' then
            return {1, math.floor(((burst + 1) * T - used) / T)}
        end
        redis.call('SET', KEYS[1], string.format('%.0f', tat + T), 'PX', math.ceil(used / 1000))
        return {1, math.floor(((burst + 1) * T - used) / T)}
        """#)
}
