/// One key's nginx `limit_req` state: `excess` in thousandths of a request, `last` admitted time in ms.
///
/// 16 bytes. Mutated only under its shard's lock.
struct LeakyBucket: Sendable {
    /// Requests above the rate still to drain, × 1000.
    var excess: Int
    /// When the last admitted request was accounted, in the caller's milliseconds.
    var last: UInt64

    /// Milliseconds since `last` as nginx computes them: a clock that went back by up to a minute counts 0,
    /// further back counts 1 (`ngx_http_limit_req_lookup`); capped so `rate × ms` cannot overflow.
    static func elapsed(from last: UInt64, to now: UInt64) -> Int {
        if now >= last { return Int(min(now - last, 1 << 32)) }
        return last - now > 60_000 ? 1 : 0
    }

    /// Applies one request at `now` with nginx's arithmetic. Returns the new excess if admitted (state updated),
    /// or nil if rejected (state untouched: rejected requests do not count).
    mutating func take(now: UInt64, rate: Int, burst: Int) -> Int? {
        let ms = LeakyBucket.elapsed(from: last, to: now)
        let e = max(0, excess - rate * ms / 1000 + 1000)
        if e > burst { return nil }
        excess = e
        if ms != 0 { last = now }
        return e
    }

    /// Milliseconds from `now` until `take` would admit a request (0 if it would now).
    func waitMillis(now: UInt64, rate: Int, burst: Int) -> UInt64 {
        // Admitted once rate·ms/1000 ≥ need, i.e. ms ≥ ceil(need·1000 / rate), ms counted from `last`.
        let need = excess + 1000 - burst
        if need <= 0 { return 0 }
        let msNeeded = (need * 1000 + rate - 1) / rate
        let ms = LeakyBucket.elapsed(from: last, to: now)
        return msNeeded > ms ? UInt64(msNeeded - ms) : 0
    }
}
