import TollgateIO
import Synchronization

/// Every user's token and request balances for the current UTC day and month, shared by all workers: a request
/// reserves what it may cost before it is forwarded, and settles with Ollama's real count when it ends.
///
/// No overshoot: a reservation holds the prompt estimate plus the generation cap it hands back, and the cap is what
/// the quota has left after the estimate; concurrent requests reserve from the same balance under one lock, so the
/// tokens held and spent never exceed a limit (unless Ollama counts more than the estimate, which settles as
/// counted). Windows are UTC calendar days and months; a request is charged in the window it ends in.
///
/// Thread-safe: one `Mutex`, held for a few dictionary operations (once per inference request, never per byte).
/// Memory: one entry per user who made an inference request.
public final class QuotaBook: Sendable {
    /// Unix seconds now (injected in tests).
    public let clock: @Sendable () -> Int64
    private let balances = Mutex<[String: QuotaBalance]>([:])
    /// How many charges `record` has made (changed under `balances`' lock): a settlement's number, which tells the
    /// fleet's balances whether a join's snapshot of `spending` already held it (`SharedQuotas`).
    private let recorded = Atomic<UInt64>(0)

    /// A book reading the wall clock, or `clock`.
    public init(clock: @escaping @Sendable () -> Int64 = QuotaBook.wallClock) {
        self.clock = clock
    }

    /// Unix seconds from the system's real-time clock.
    public static let wallClock: @Sendable () -> Int64 = { Int64(Syscall.wallNanos() / 1_000_000_000) }

    /// Adds what `history` says was spent in the current day and month, and returns it per user (the fleet's
    /// balances in Redis are seeded with it too). Blocking (the history reads its store): call it at start-up,
    /// before requests arrive.
    @discardableResult
    public func seed(from history: any SpendingHistory) throws -> [String: Spending] {
        let windows = UTCWindows(unixSeconds: clock())
        let spent = try history.spent(sinceDay: windows.dayStart, sinceMonth: windows.monthStart)
        balances.withLock { table in
            for (user, s) in spent {
                var b = table[user] ?? QuotaBalance(windows)
                b.roll(windows)
                b.dayTokens = b.dayTokens.saturatingAdd(s.dayTokens)
                b.monthTokens = b.monthTokens.saturatingAdd(s.monthTokens)
                b.dayRequests = b.dayRequests.saturatingAdd(s.dayRequests)
                table[user] = b
            }
        }
        return spent
    }

    /// Charges `user` what a request reserved elsewhere cost (the fleet's balances in Redis settled it): this
    /// process's book keeps its own instance's spending, which its `local` fallback decides on while Redis is down.
    /// Returns the charge's number (`spendingSnapshot`'s `through` counts it once it is in the book; a charge of
    /// nothing gets the number of the last charge).
    @discardableResult
    func record(user: String, _ charge: QuotaCharge, reserved: Int) -> UInt64 {
        let tokens: Int
        switch charge {
        case .counted(let n): tokens = max(0, n)
        case .reservation: tokens = reserved
        case .nothing: return balances.withLock { _ in recorded.load(ordering: .relaxed) }
        }
        let windows = UTCWindows(unixSeconds: clock())
        return balances.withLock { table in
            var b = table[user] ?? QuotaBalance(windows)
            b.roll(windows)
            // Counts a backend reported: the sums stop at Int's bounds rather than trap on the loop.
            b.dayTokens = b.dayTokens.saturatingAdd(tokens)
            b.monthTokens = b.monthTokens.saturatingAdd(tokens)
            b.dayRequests = b.dayRequests.saturatingAdd(1)
            table[user] = b
            return recorded.add(1, ordering: .relaxed).newValue
        }
    }

    /// Every user's spending in the current windows, and the number of the last charge `record` made that it holds
    /// (every charge numbered up to `through` is in it, none after). One lock: the two agree. `now` (Unix seconds,
    /// the book's clock when nil): the windows, which must be those the caller writes the spending into (a join read
    /// across midnight would add yesterday's day to today's).
    public func spendingSnapshot(at now: Int64? = nil) -> (spent: [String: Spending], through: UInt64) {
        let windows = UTCWindows(unixSeconds: now ?? clock())
        return balances.withLock { table in
            (Self.spending(table, windows), recorded.load(ordering: .relaxed))
        }
    }

    /// Reserves for one request by `user` under `limits`: granted (with the generation cap the quota leaves) or
    /// refused (429). A grant must be settled exactly once.
    public func reserve(user: String, limits: QuotaLimits, estimate: QuotaEstimate) -> QuotaDecision {
        let now = clock()
        let windows = UTCWindows(unixSeconds: now)
        return balances.withLock { table in
            var b = table[user] ?? QuotaBalance(windows)
            b.roll(windows)
            let decision = b.reserve(user: user, limits: limits, estimate: estimate, windows: windows, now: now)
            table[user] = b
            return decision
        }
    }

    /// Ends a reservation: releases what it held and charges `charge`.
    public func settle(_ reservation: QuotaReservation, _ charge: QuotaCharge) {
        let windows = UTCWindows(unixSeconds: clock())
        balances.withLock { table in
            guard var b = table[reservation.user] else { return }
            b.roll(windows)
            b.settle(reservation, charge)
            table[reservation.user] = b
        }
    }

    /// The same reservation holding a smaller generation cap, `predict` (the request asked for less than the
    /// quota left): the difference is released at once.
    public func shrink(_ reservation: QuotaReservation, toPredict predict: Int) -> QuotaReservation {
        guard let cap = reservation.predictCap, predict < cap else { return reservation }
        let release = cap - max(0, predict)
        let windows = UTCWindows(unixSeconds: clock())
        balances.withLock { table in
            guard var b = table[reservation.user] else { return }
            b.roll(windows)
            if b.day == reservation.day { b.dayHeld -= release }
            if b.month == reservation.month { b.monthHeld -= release }
            table[reservation.user] = b
        }
        return QuotaReservation(user: reservation.user, tokens: reservation.tokens - release, predictCap: max(0, predict),
                                capped: false, day: reservation.day, month: reservation.month)
    }

    /// Every user's spending in the current windows (what `balance(of:)` says of each, without the holds): the
    /// quota gauges' values, read at scrape time.
    public func spending() -> [String: Spending] {
        let windows = UTCWindows(unixSeconds: clock())
        return balances.withLock { table in Self.spending(table, windows) }
    }

    private static func spending(_ table: [String: QuotaBalance], _ windows: UTCWindows) -> [String: Spending] {
        var out: [String: Spending] = [:]
        for (user, stored) in table {
            var b = stored
            b.roll(windows)
            out[user] = Spending(dayTokens: b.dayTokens, monthTokens: b.monthTokens, dayRequests: b.dayRequests)
        }
        return out
    }

    /// `user`'s balance now: spent and held in the day and month, requests today.
    public func balance(of user: String) -> (dayTokens: Int, monthTokens: Int, dayRequests: Int, held: Int) {
        let windows = UTCWindows(unixSeconds: clock())
        return balances.withLock { table in
            guard var b = table[user] else { return (0, 0, 0, 0) }
            b.roll(windows)
            return (b.dayTokens, b.monthTokens, b.dayRequests, b.dayHeld)
        }
    }
}

/// One user's spending in the current windows, and what requests in flight hold. A plain value: `QuotaBook` runs
/// it under its lock.
struct QuotaBalance {
    var day: Int64
    var month: Int64
    var dayTokens = 0
    var monthTokens = 0
    var dayRequests = 0
    var dayHeld = 0
    var monthHeld = 0
    var dayHeldRequests = 0

    init(_ windows: UTCWindows) {
        day = windows.day
        month = windows.month
    }

    /// Starts new windows when the day or month has turned: what was spent goes, and so does what was held
    /// (the requests holding it settle into the new windows without releasing it there).
    mutating func roll(_ windows: UTCWindows) {
        if windows.day != day {
            day = windows.day
            dayTokens = 0
            dayRequests = 0
            dayHeld = 0
            dayHeldRequests = 0
        }
        if windows.month != month {
            month = windows.month
            monthTokens = 0
            monthHeld = 0
        }
    }

    mutating func reserve(user: String, limits: QuotaLimits, estimate: QuotaEstimate, windows: UTCWindows,
                          now: Int64) -> QuotaDecision {
        let dayLength = Int(windows.dayEnd - windows.dayStart)
        let monthLength = Int(windows.monthEnd - windows.monthStart)
        let dayReset = Int(max(1, windows.dayEnd - now))
        let monthReset = Int(max(1, windows.monthEnd - now))
        if let limit = limits.requestsPerDay, dayRequests + dayHeldRequests >= limit {
            let inFlight = dayRequests < limit
            return .refused(QuotaRefusal(window: .requestsPerDay, limit: limit,
                                         remaining: limit - dayRequests - dayHeldRequests,
                                         retryAfterSeconds: inFlight ? 1 : dayReset, windowSeconds: dayLength,
                                         needed: nil, heldByRequestsInFlight: inFlight))
        }
        let needed = estimate.promptTokens + (estimate.generates ? 1 : 0)
        // Each token window: what is left after spending and holds; the one that leaves least binds the cap.
        var left = Int.max
        var refusal: QuotaRefusal?
        let windowsToCheck: [(QuotaWindow, Int?, Int, Int, Int, Int)] = [
            (.tokensPerMonth, limits.tokensPerMonth, monthTokens, monthHeld, monthReset, monthLength),
            (.tokensPerDay, limits.tokensPerDay, dayTokens, dayHeld, dayReset, dayLength),
        ]
        for (window, limit, spent, held, reset, length) in windowsToCheck {
            guard let limit else { continue }
            let remaining = limit.saturatingSubtract(spent).saturatingSubtract(held)
            left = min(left, remaining)
            guard refusal == nil, remaining < needed else { continue }
            // Spent in full, or not enough for this request even once the requests in flight settle: the window's
            // reset. Enough but for the holds: retry soon.
            let inFlight = limit - spent >= needed
            refusal = QuotaRefusal(window: window, limit: limit, remaining: remaining,
                                   retryAfterSeconds: inFlight ? 1 : reset, windowSeconds: length,
                                   needed: spent < limit ? needed : nil, heldByRequestsInFlight: inFlight)
        }
        if let refusal { return .refused(refusal) }
        var tokens = 0
        var cap: Int?
        var capped = false
        if limits.limitsTokens {
            if estimate.generates {
                let quotaCap = left - estimate.promptTokens
                cap = min(quotaCap, estimate.maxPredict ?? Int.max)
                capped = quotaCap < (estimate.maxPredict ?? Int.max)
            }
            tokens = estimate.promptTokens + (cap ?? 0)
        }
        dayHeld += tokens
        monthHeld += tokens
        dayHeldRequests += 1
        return .granted(QuotaReservation(user: user, tokens: tokens, predictCap: cap, capped: capped,
                                         day: day, month: month))
    }

    mutating func settle(_ r: QuotaReservation, _ charge: QuotaCharge) {
        if r.day == day {
            dayHeld -= r.tokens
            dayHeldRequests -= 1
        }
        if r.month == month { monthHeld -= r.tokens }
        let tokens: Int
        switch charge {
        case .counted(let n): tokens = max(0, n)
        case .reservation: tokens = r.tokens
        case .nothing: return
        }
        dayTokens = dayTokens.saturatingAdd(tokens)
        monthTokens = monthTokens.saturatingAdd(tokens)
        dayRequests = dayRequests.saturatingAdd(1)
    }
}
