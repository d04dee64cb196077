import TollgateIO

/// The Lua side of `SharedQuotas`: each user's token and request balances for the fleet, one atomic script per
/// reservation and one per settlement.
///
/// Keys (one `{quota}` hash tag, so a Redis Cluster keeps them in one slot): `<prefix>day:<day>:<user>` (a hash:
/// `tokens`, `requests` spent in the UTC day numbered `day`), `<prefix>month:<month>:<user>` (`tokens`), and the
/// user's holds: `<prefix>holds:<user>` (a sorted set of hold ids scored by their deadline, ms) and
/// `<prefix>held:<user>` (a hash: each hold id → `"tokens day month"`, plus the running totals `d:<day>` tokens held
/// in that day, `r:<day>` requests held, `m:<month>` tokens held in that month). A hold past its deadline belongs to
/// an instance that stopped extending it (crashed, or cut off from Redis): the next reservation of that user
/// releases it, so holds never leak for longer than the lease. The window hashes expire an hour after their window
/// ends; the holds' keys a minute after two leases without a write (then every hold in them has expired anyway).
///
/// Time is the caller's clock (ms), passed in ARGV: the windows are the same UTC calendar windows `QuotaBook`
/// computes, so that a fallback to it decides in the same windows (keep the fleet's clocks in step: a hold's deadline
/// is its instance's clock plus the lease).
///
/// Membership: `<prefix>joined` is a hash of the instances (by their persistent id, `FleetMember`) whose own spending
/// in the current windows is in the balances, each → `"<process nonce> <through>"`: the process that joined, and the
/// number of its book's last charge its join added (`QuotaBook.spendingSnapshot`). An instance joins once (`join`:
/// adds its spending and itself, in one script); a Redis that restarted empty has no members, so every reservation
/// and settlement answers `-1` ("join first") until the instance has joined again with what its own book knows: the
/// balances are rebuilt as the sum of every instance's spending instead of starting from zero. An instance that
/// restarts beside a Redis that kept its data is a member already and adds nothing (its spending is in the
/// balances). A settlement carries its process nonce and charge number: one the member's join already added (sent
/// again after the join, by any of the process's loops) releases its hold and charges nothing. Each join also
/// records `#<nonce>` → through, which a take-over of the member's entry by another process leaves in place.
///
/// A `joined` hash that is missing while the current windows' balances exist means the balances were written by a
/// Tollgate that kept no members (the release before them): the first join then adopts them (`*adopted`), and
/// every instance joins without adding, as its spending is in them already.
///
/// Every script that writes makes a write Redis refuses when it is out of memory (`HINCRBY` by 0, `SET`) before any
/// other: a full Redis refuses the whole script up front, and the caller falls back, instead of granting a
/// reservation whose settlement it would then refuse.
enum SharedQuotaScript {
    /// Releases hold `id` of KEYS[2] (the user's held hash): its tokens and request from the totals of the windows
    /// it was drawn in. Returns whether it was held.
    private static let release = #"""
        local function release(id)
            local detail = redis.call('HGET', KEYS[2], id)
            if not detail then return false end
            local t, hd, hm = string.match(detail, '^(%d+) (%d+) (%d+)$')
            -- Lua numbers are doubles: -0 would reach Redis as "-0", which HINCRBY refuses.
            local function dec(field, by)
                if by == 0 then return end
                if redis.call('HINCRBY', KEYS[2], field, -by) <= 0 then redis.call('HDEL', KEYS[2], field) end
            end
            dec('d:' .. hd, tonumber(t))
            dec('r:' .. hd, 1)
            dec('m:' .. hm, tonumber(t))
            redis.call('HDEL', KEYS[2], id)
            redis.call('ZREM', KEYS[1], id)
            return true
        end
        """#

    /// `release` with the holds and held keys as arguments (the heartbeat covers several users).
    private static let release2 = #"""
        local function release2(holds, held, id)
            local detail = redis.call('HGET', held, id)
            if not detail then return false end
            local t, hd, hm = string.match(detail, '^(%d+) (%d+) (%d+)$')
            local function dec(field, by)
                if by == 0 then return end
                if redis.call('HINCRBY', held, field, -by) <= 0 then redis.call('HDEL', held, field) end
            end
            dec('d:' .. hd, tonumber(t))
            dec('r:' .. hd, 1)
            dec('m:' .. hm, tonumber(t))
            redis.call('HDEL', held, id)
            redis.call('ZREM', holds, id)
            return true
        end
        """#

    /// KEYS: holds, held, day, month (of the user, in the current windows), joined. ARGV: 1 now ms, 2 day, 3 month,
    /// 4 lease ms, 5 hold id, 6 tokens-per-day, 7 tokens-per-month, 8 requests-per-day ("" when unset),
    /// 9 prompt estimate, 10 generates (1/0), 11 max-predict ("" when unset), 12 member id, 13 process nonce.
    ///
    /// Purges the user's expired holds, then decides exactly as `QuotaBalance.reserve`: the request quota first, then
    /// the month, then the day, each against spent + held. Returns `{1, tokens held, generation cap or -1, capped,
    /// other}` with the hold recorded, `{0, window (1 day, 2 month, 3 requests), limit, remaining, held by requests in
    /// flight (1/0), tokens needed or -1, other}`, or `{-1}` when the instance must join first; `other` is 1 when the
    /// member's entry names another process.
    static let reserve = RedisScript(release + "\n" + #"""
        local entry = redis.call('HGET', KEYS[5], ARGV[12])
        if not entry then return {-1} end
        local other = 0
        if string.sub(entry, 1, #ARGV[13] + 1) ~= ARGV[13] .. ' ' then other = 1 end
        local now = tonumber(ARGV[1])
        local day, month = ARGV[2], ARGV[3]
        local lease = tonumber(ARGV[4])
        -- The first write may be refused for memory: then nothing is written.
        redis.call('HINCRBY', KEYS[2], 'r:' .. day, 0)
        local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
        for _, id in ipairs(expired) do release(id) end
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local function num(v) return tonumber(v) or 0 end
        local dayTokens = num(redis.call('HGET', KEYS[3], 'tokens'))
        local dayRequests = num(redis.call('HGET', KEYS[3], 'requests'))
        local monthTokens = num(redis.call('HGET', KEYS[4], 'tokens'))
        local dayHeld = num(redis.call('HGET', KEYS[2], 'd:' .. day))
        local dayHeldRequests = num(redis.call('HGET', KEYS[2], 'r:' .. day))
        local monthHeld = num(redis.call('HGET', KEYS[2], 'm:' .. month))
        local tpd, tpm, rpd = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
        local prompt = tonumber(ARGV[9])
        local generates = ARGV[10] == '1'
        local maxPredict = tonumber(ARGV[11])
        if rpd and dayRequests + dayHeldRequests >= rpd then
            local inFlight = 0
            if dayRequests < rpd then inFlight = 1 end
            return {0, 3, rpd, rpd - dayRequests - dayHeldRequests, inFlight, -1, other}
        end
        local needed = prompt
        if generates then needed = needed + 1 end
        local left = nil
        for _, w in ipairs({{2, tpm, monthTokens, monthHeld}, {1, tpd, dayTokens, dayHeld}}) do
            local limit = w[2]
            if limit then
                local remaining = limit - w[3] - w[4]
                if not left or remaining < left then left = remaining end
                if remaining < needed then
                    local inFlight, need = 0, -1
                    if limit - w[3] >= needed then inFlight = 1 end
                    if w[3] < limit then need = needed end
                    return {0, w[1], limit, remaining, inFlight, need, other}
                end
            end
        end
        local tokens, cap, capped = 0, -1, 0
        if left then
            tokens = prompt
            if generates then
                local quotaCap = left - prompt
                cap = quotaCap
                if maxPredict and maxPredict < cap then cap = maxPredict end
                if not maxPredict or quotaCap < maxPredict then capped = 1 end
                tokens = prompt + cap
            end
        end
        local id = ARGV[5]
        redis.call('HSET', KEYS[2], id, string.format('%.0f', tokens) .. ' ' .. day .. ' ' .. month)
        redis.call('HINCRBY', KEYS[2], 'd:' .. day, tokens)
        redis.call('HINCRBY', KEYS[2], 'r:' .. day, 1)
        redis.call('HINCRBY', KEYS[2], 'm:' .. month, tokens)
        redis.call('ZADD', KEYS[1], now + lease, id)
        redis.call('PEXPIRE', KEYS[1], 2 * lease + 60000)
        redis.call('PEXPIRE', KEYS[2], 2 * lease + 60000)
        return {1, tokens, cap, capped, other}
        """#)

    /// KEYS: holds, held, day, month (the windows the request ended in), joined, the settlement's marker. ARGV:
    /// 1 hold id, 2 tokens charged, 3 counts as a request (1/0: 0 charges nothing), 4 day key's TTL ms, 5 month key's
    /// TTL ms (0: that window is over, charge nothing to it), 6 member id, 7 the marker's TTL ms, 8 process nonce,
    /// 9 the charge's number in its process's book. Releases the hold if it is still held and charges, unless the
    /// member's join added this charge already. Returns 1 if it was held, 0 if not, 2 if this settlement was made
    /// already (sent again after its reply was lost: the marker makes it count once), 3 if the join had added it,
    /// -1 when the instance must join first.
    static let settle = RedisScript(release + "\n" + #"""
        local entry = redis.call('HGET', KEYS[5], ARGV[6])
        if not entry then return -1 end
        if not redis.call('SET', KEYS[6], '1', 'NX', 'PX', ARGV[7]) then return 2 end
        local held = release(ARGV[1])
        local nonce, through = string.match(entry, '^(%S+) (%d+)$')
        if nonce == ARGV[8] and tonumber(ARGV[9]) <= tonumber(through) then return 3 end
        -- The entry may name another process now (a take-over): what this process's own join added still counts.
        local own = tonumber(redis.call('HGET', KEYS[5], '#' .. ARGV[8]))
        if own and tonumber(ARGV[9]) <= own then return 3 end
        if ARGV[3] == '1' then
            local t = tonumber(ARGV[2])
            local dayTTL, monthTTL = tonumber(ARGV[4]), tonumber(ARGV[5])
            if dayTTL > 0 then
                redis.call('HINCRBY', KEYS[3], 'tokens', t)
                redis.call('HINCRBY', KEYS[3], 'requests', 1)
                redis.call('PEXPIRE', KEYS[3], dayTTL)
            end
            if monthTTL > 0 then
                redis.call('HINCRBY', KEYS[4], 'tokens', t)
                redis.call('PEXPIRE', KEYS[4], monthTTL)
            end
        end
        if held then return 1 end
        return 0
        """#)

    /// KEYS: holds, held. ARGV: 1 hold id, 2 tokens to release. The hold keeps what is left (its request asked for
    /// less than the quota's cap). Returns 1 if it was held.
    static let shrink = RedisScript(#"""
        local detail = redis.call('HGET', KEYS[2], ARGV[1])
        if not detail then return 0 end
        local t, hd, hm = string.match(detail, '^(%d+) (%d+) (%d+)$')
        local by = math.min(tonumber(t), tonumber(ARGV[2]))
        if by <= 0 then return 1 end
        redis.call('HSET', KEYS[2], ARGV[1], string.format('%.0f', tonumber(t) - by) .. ' ' .. hd .. ' ' .. hm)
        redis.call('HINCRBY', KEYS[2], 'd:' .. hd, -by)
        redis.call('HINCRBY', KEYS[2], 'm:' .. hm, -by)
        return 1
        """#)

    /// KEYS: holds and held of each hold's user, in pairs. ARGV: 1 now ms, 2 lease ms, then each hold as
    /// `"<id> <tokens> <day> <month>"`. Extends every hold still held and returns 1 for it; a hold that is gone (Redis
    /// lost its data) or past its deadline (this instance was cut off longer than the lease, and another reservation
    /// may have released it) is released if still there and held again with its tokens in its windows, and returns
    /// 2: its request is still running, so what it will charge stays reserved and no other request is granted it.
    static let heartbeat = RedisScript(release2 + "\n" + #"""
        local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
        local out = {}
        for i = 1, #KEYS / 2 do
            local holds, held = KEYS[2 * i - 1], KEYS[2 * i]
            local id, t, hd, hm = string.match(ARGV[i + 2], '^(%S+) (%d+) (%d+) (%d+)$')
            local score = tonumber(redis.call('ZSCORE', holds, id))
            if score and score > now then
                redis.call('ZADD', holds, now + lease, id)
                out[i] = 1
            else
                release2(holds, held, id)
                local tokens = tonumber(t)
                redis.call('HSET', held, id, t .. ' ' .. hd .. ' ' .. hm)
                if tokens > 0 then
                    redis.call('HINCRBY', held, 'd:' .. hd, tokens)
                    redis.call('HINCRBY', held, 'm:' .. hm, tokens)
                end
                redis.call('HINCRBY', held, 'r:' .. hd, 1)
                redis.call('ZADD', holds, now + lease, id)
                out[i] = 2
            end
            redis.call('PEXPIRE', holds, 2 * lease + 60000)
            redis.call('PEXPIRE', held, 2 * lease + 60000)
        end
        return out
        """#)

    /// KEYS: joined, then each user's day and month keys in pairs. ARGV: 1 member id, 2 day TTL ms, 3 month TTL ms,
    /// 4 the member's entry if it joins now (`"<nonce> <through>"`), 5 its entry if it is a member already and takes
    /// the entry over (a new start of the instance: `"<nonce> 0"`, none of its charges added by a join; "" to leave
    /// the entry as it is), 6 and 7 match patterns of the current day's and month's balance keys ("" when this join
    /// must not adopt), then each user's day tokens, day requests and month tokens. If the instance is not a member
    /// yet, adds each user's spending to the balances (none when the balances were adopted) and the instance to the
    /// members, at once. Returns `{1, entry}` if it joined now, `{0, entry}` with the entry that was there if it was a
    /// member (nothing added: its spending is in the balances).
    static let join = RedisScript(#"""
        local entry = redis.call('HGET', KEYS[1], ARGV[1])
        if entry then
            if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[5]) end
            return {0, entry}
        end
        local adopted = redis.call('HGET', KEYS[1], '*adopted') == '1'
        local fresh = redis.call('EXISTS', KEYS[1]) == 0
        if fresh and ARGV[6] ~= '' then
            -- Balances without a members hash: a Tollgate that keeps none wrote them. Adopt them as they are.
            for _, pattern in ipairs({ARGV[6], ARGV[7]}) do
                local cursor = '0'
                repeat
                    local r = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
                    cursor = r[1]
                    if #r[2] > 0 then adopted = true end
                until cursor == '0' or adopted
                if adopted then break end
            end
        end
        -- The first write: a full Redis refuses it before anything is added.
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
        -- What this join added, by process: kept when another process takes the member's entry over, so that a
        -- settlement this process sends again later is still known as added.
        local n, th = string.match(ARGV[4], '^(%S+) (%d+)$')
        if n then redis.call('HSET', KEYS[1], '#' .. n, th) end
        if adopted then
            if fresh then redis.call('HSET', KEYS[1], '*adopted', '1') end
            return {1, ARGV[4]}
        end
        for i = 1, (#KEYS - 1) / 2 do
            local dayKey, monthKey = KEYS[2 * i], KEYS[2 * i + 1]
            local dt, dr, mt = ARGV[3 * i + 5], ARGV[3 * i + 6], ARGV[3 * i + 7]
            if dt ~= '0' then redis.call('HINCRBY', dayKey, 'tokens', dt) end
            if dr ~= '0' then redis.call('HINCRBY', dayKey, 'requests', dr) end
            if dt ~= '0' or dr ~= '0' then redis.call('PEXPIRE', dayKey, ARGV[2]) end
            if mt ~= '0' then
                redis.call('HINCRBY', monthKey, 'tokens', mt)
                redis.call('PEXPIRE', monthKey, ARGV[3])
            end
        end
        return {1, ARGV[4]}
        """#)

    /// KEYS: holds, held, day, month. ARGV: now ms, day, month. `{day tokens, month tokens, day requests, day tokens
    /// held, day requests held}` after releasing expired holds (tests and diagnostics).
    static let balance = RedisScript(release + "\n" + #"""
        local now = tonumber(ARGV[1])
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do release(id) end
        local function num(v) return tonumber(v) or 0 end
        return {num(redis.call('HGET', KEYS[3], 'tokens')), num(redis.call('HGET', KEYS[4], 'tokens')),
                num(redis.call('HGET', KEYS[3], 'requests')), num(redis.call('HGET', KEYS[2], 'd:' .. ARGV[2])),
                num(redis.call('HGET', KEYS[2], 'r:' .. ARGV[2]))}
        """#)
}
