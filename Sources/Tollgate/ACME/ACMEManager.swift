import Glibc
import Synchronization
import TollgateIO

/// The clock the ACME thread plans by and sleeps on: the system's in `serve`, a hand-driven one in tests.
public protocol ACMEClock: Sendable {
    /// Seconds since the epoch.
    func now() -> Int64
    /// Blocks until `time` (seconds since the epoch) or `interrupt`; false once interrupted (the thread ends).
    func wait(until time: Int64) -> Bool
    /// Wakes `wait` for good.
    func interrupt()
}

/// The wall clock, slept on with a condition variable (monotonic, in steps of at most an hour, so a wall-clock step
/// is noticed within the hour).
public final class SystemACMEClock: ACMEClock {
    private let lock = ConditionLock()
    private let interrupted = Atomic<Bool>(false)

    public init() {}

    public func now() -> Int64 { Int64(time(nil)) }

    public func wait(until time: Int64) -> Bool {
        while !interrupted.load(ordering: .relaxed) {
            let left = time - now()
            if left <= 0 { return true }
            let deadline = Syscall.monotonicNanos() + UInt64(min(left, 3_600)) * 1_000_000_000
            _ = lock.wait(until: deadline) { interrupted.load(ordering: .relaxed) }
        }
        return false
    }

    public func interrupt() {
        lock.withLock { interrupted.store(true, ordering: .relaxed) }
        lock.broadcast()
    }
}

/// Keeps the served certificate issued and renewed by an ACME CA, on a thread of its own (never an event loop):
/// orders one at once when the store has none for the configured names, else sleeps until a third of the stored
/// certificate's lifetime is left; a failed attempt is logged once, with the CA's problem document, counted in
/// `tollgate_acme_failures_total`, and tried again after an exponential backoff with jitter. Each new certificate is
/// saved in the store, then handed to `install` (the server's certificate reload: every worker, no connection
/// dropped).
public final class ACMEManager: @unchecked Sendable {
    /// Obtains a certificate for the names (the whole RFC 8555 flow; blocking).
    public typealias Issue = @Sendable () throws(ACMEError) -> IssuedCertificate
    /// Swaps a stored certificate in; throws when it cannot be loaded.
    public typealias Install = @Sendable (_ certificatePath: String, _ keyPath: String) throws(SocketError) -> Void
    /// Asks the CA for its renewal window for a certificate (RFC 9773); nil when the CA offers none.
    public typealias RenewalInfo = @Sendable (_ certificate: TLSCertificate) throws(ACMEError) -> RenewalWindow?

    public let domains: [String]
    public let store: ACMEStore
    private let issue: Issue
    private let install: Install
    private let renewalInfo: RenewalInfo?
    private let clock: any ACMEClock
    /// A number in 0..<1 for the jitter.
    private let random: @Sendable () -> Double
    private let metrics: Metrics?
    /// Where the CA is, for the log.
    private let caName: String
    private var thread: pthread_t?
    /// Attempts that failed in a row (reset by a success); read by tests.
    public let consecutiveFailures = Atomic<Int>(0)
    /// Certificates obtained and installed since the start; read by tests.
    public let issuedCount = Atomic<Int>(0)
    /// When the thread plans its next attempt (seconds since the epoch, on `clock`); 0 until it first plans one.
    /// Set before each wait: tests read it to know the thread is asleep and until when.
    public let nextAttempt = Atomic<Int64>(0)
    /// Attempts begun since the start (successful or not); read by tests.
    public let attempts = Atomic<Int>(0)

    /// The shortest and longest waits after a failure, in seconds.
    static let firstRetrySeconds: Int64 = 60
    static let longestRetrySeconds: Int64 = 6 * 3_600

    /// How often the CA's renewal information is asked for when it gives no Retry-After, and the bounds on one it
    /// gives, in seconds.
    static let renewalInfoSeconds: Int64 = 6 * 3_600
    static let renewalInfoBounds: ClosedRange<Int64> = 600...86_400

    public init(domains: [String], store: ACMEStore, caName: String, issue: @escaping Issue,
                install: @escaping Install, renewalInfo: RenewalInfo? = nil, clock: any ACMEClock = SystemACMEClock(),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }, metrics: Metrics? = nil) {
        self.domains = domains
        self.store = store
        self.caName = caName
        self.issue = issue
        self.install = install
        self.renewalInfo = renewalInfo
        self.clock = clock
        self.random = random
        self.metrics = metrics
        metrics?.acmeEnabled()
    }

    /// The wait after `failures` failed attempts in a row: 1, 2, 4 ... minutes up to 6 hours, each drawn from its
    /// upper half (`random` in 0..<1), so that servers that failed together do not all retry together.
    static func backoff(failures: Int, random: Double) -> Int64 {
        let doubled = firstRetrySeconds << Int64(min(max(failures - 1, 0), 20))
        let ceiling = min(doubled, longestRetrySeconds)
        return ceiling / 2 + Int64(Double(ceiling / 2) * min(max(random, 0), 1))
    }

    /// When the next order is due for `stored` (nil: none stored): now when it is missing, expired or for other
    /// names; else a third of its lifetime before it expires.
    func due(_ stored: StoredCertificate?, now: Int64) -> Int64 {
        guard let stored, stored.covers(domains), stored.certificate.notAfter > now else { return now }
        return stored.renewalDue
    }

    /// Starts the thread.
    public func start() {
        thread = spawnThread(name: "tollgate-acme") { [self] in run() }
    }

    /// Set by `stop`: a conversation with the CA under way ends at its next wait (`ACMEClient.cancelled`).
    public let stopping = Atomic<Bool>(false)

    /// Waits `seconds` between polls of the CA, in steps, ending early once `stopping` is set.
    public func pause(seconds: Double) {
        var left = Int(min(max(seconds, 0), 3_600) * 1_000)
        while left > 0 && !stopping.load(ordering: .relaxed) {
            let step = min(left, 100)
            usleep(UInt32(step * 1_000))
            left -= step
        }
    }

    /// Stops the thread and waits for it: an attempt under way ends at its next wait for the CA, or when the
    /// exchange in progress ends (each is bounded: `ACMEHTTPClient.answerMillis`).
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        clock.interrupt()
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    /// What the CA last said of the stored certificate's renewal (RFC 9773), on the thread.
    private struct RenewalAdvice {
        /// The certificate it is about.
        var certificate: TLSCertificate
        var window: RenewalWindow?
        /// The time chosen in `window`.
        var chosen: Int64?
        /// When to ask again.
        var askAt: Int64
        /// Whether the last question failed (a failure is logged once until an answer comes).
        var failing = false
    }

    /// The thread's body: sleep until due (a third of the lifetime left, or earlier when the CA's renewal window
    /// says so), order, save, install; back off after a failure.
    func run() {
        var retryAt: Int64 = 0
        var advice: RenewalAdvice?
        while true {
            let stored = try? store.issued()
            let now = clock.now()
            var next = due(stored, now: now)
            var wake = next
            if let stored, next > now, renewalInfo != nil {
                if let current = advice, !current.certificate.isSame(as: stored.certificate) { advice = nil }
                if now >= advice?.askAt ?? 0 { advice = askForRenewalInfo(stored, previous: advice, now: now) }
                if let chosen = advice?.chosen { next = min(next, max(chosen, now)) }
                wake = min(next, advice?.askAt ?? next)
            }
            if consecutiveFailures.load(ordering: .relaxed) > 0 {
                next = max(next, retryAt)
                wake = min(next, advice?.askAt ?? next)
            }
            nextAttempt.store(next, ordering: .relaxed)
            guard clock.wait(until: min(wake, next)) else { return }
            // Woken to ask the CA again, not to order.
            if clock.now() < next { continue }
            attempts.add(1, ordering: .relaxed)
            if attempt(renewing: stored) {
                advice = nil
                // A certificate that is due again at once (issued already old, a clock far ahead, a renewal window
                // that stays in the past) must not make the thread order in a loop: each such success waits as a
                // failure would, longer each time.
                let again = due(try? store.issued(), now: clock.now())
                if again <= clock.now() + Self.firstRetrySeconds {
                    quickRenewals += 1
                    let wait = Self.backoff(failures: quickRenewals, random: random())
                    retryAt = clock.now() + wait
                    consecutiveFailures.store(quickRenewals, ordering: .relaxed)
                    Diagnostics.warn("acme: the certificate \(caName) just issued is already due for renewal (its "
                                     + "validity, or this server's clock); next order in \(Self.describe(seconds: wait))")
                } else {
                    quickRenewals = 0
                }
                continue
            }
            let failures = consecutiveFailures.add(1, ordering: .relaxed).newValue
            let wait = Self.backoff(failures: failures, random: random())
            retryAt = clock.now() + wait
            Diagnostics.warn("acme: next attempt in \(Self.describe(seconds: wait))")
        }
    }

    /// Asks the CA for the stored certificate's renewal window; keeps the time chosen in a window it already had.
    private func askForRenewalInfo(_ stored: StoredCertificate, previous: RenewalAdvice?, now: Int64) -> RenewalAdvice {
        guard let renewalInfo else { return RenewalAdvice(certificate: stored.certificate, askAt: .max) }
        var advice = previous ?? RenewalAdvice(certificate: stored.certificate, askAt: now)
        let window: RenewalWindow?
        do throws(ACMEError) {
            window = try renewalInfo(stored.certificate)
        } catch {
            if !advice.failing {
                Diagnostics.warn("acme: asking \(caName) for the certificate's renewal window failed: "
                                 + "\(error.description); renewing \(Self.describe(time: stored.renewalDue)) as planned")
            }
            advice.failing = true
            advice.askAt = now + 3_600
            return advice
        }
        advice.failing = false
        guard let window else {
            // The CA has no renewal information: asked again now and then, in case it starts to.
            advice.window = nil
            advice.chosen = nil
            advice.askAt = now + Self.renewalInfoSeconds
            return advice
        }
        if advice.window.map({ $0.start != window.start || $0.end != window.end }) ?? true {
            let chosen = window.end <= now ? now : max(window.chosen(random: random()), now)
            advice.chosen = chosen
            if chosen < stored.renewalDue {
                Diagnostics.info("acme: \(caName) suggests renewing the certificate between "
                                 + "\(Self.describe(time: window.start)) and \(Self.describe(time: window.end))"
                                 + (window.explanationURL.map { " (\($0))" } ?? "")
                                 + ": renewing \(Self.describe(time: chosen))")
            }
        }
        advice.window = window
        let retry = window.retryAfter ?? Self.renewalInfoSeconds
        advice.askAt = now + min(max(retry, Self.renewalInfoBounds.lowerBound), Self.renewalInfoBounds.upperBound)
        return advice
    }

    /// Successes in a row whose certificate was due again at once (the ACME thread's).
    private var quickRenewals = 0
    /// The last failure logged in full (the ACME thread's); nil after a success.
    private var lastFailure: String?
    /// Failures logged in full so far (a repeat is logged in one short line); read by tests.
    public let failuresLoggedInFull = Atomic<Int>(0)

    /// Counts a failed attempt and logs it: in full (the CA's problem document included) the first time, then only
    /// that it failed the same way again, so a CA that keeps refusing does not fill the log.
    private func failed(_ message: String) {
        metrics?.acmeFailed()
        if message == lastFailure {
            Diagnostics.warn("acme: attempt \(consecutiveFailures.load(ordering: .relaxed) + 1) in a row failed the same "
                             + "way (logged above)")
        } else {
            Diagnostics.error(message)
            lastFailure = message
            failuresLoggedInFull.add(1, ordering: .relaxed)
        }
    }

    /// One order: true when a certificate was obtained, saved and installed; a failure is logged once and counted.
    private func attempt(renewing stored: StoredCertificate?) -> Bool {
        let names = domains.joined(separator: ", ")
        let what = stored == nil ? "obtaining a certificate" : "renewing the certificate"
        Diagnostics.info("acme: \(what) for \(names) from \(caName)")
        do throws(SocketError) {
            let issued: IssuedCertificate
            do throws(ACMEError) {
                issued = try issue()
            } catch {
                failed("acme: \(what) for \(names) from \(caName) failed: \(error.description)")
                return false
            }
            try Self.check(issued, domains: domains, now: clock.now())
            try store.save(issued, domains: domains)
            try install(store.chainPath, store.keyPath)
        } catch {
            failed("acme: \(what) for \(names) failed: \(error.description)")
            return false
        }
        lastFailure = nil
        consecutiveFailures.store(0, ordering: .relaxed)
        issuedCount.add(1, ordering: .relaxed)
        Diagnostics.info("acme: installed the certificate for \(names) from \(caName) (\(store.chainPath))")
        return true
    }

    /// What the CA sent, checked before it replaces the stored pair: a chain whose leaf is valid now, for every
    /// name, and matches the key (a context is built from them as every worker would).
    static func check(_ issued: IssuedCertificate, domains: [String], now: Int64) throws(SocketError) {
        let candidate = TLSCertificate(certificatePEM: issued.chain, keyPEM: issued.key,
                                       certificatePath: "the certificate the CA sent", keyPath: "its key")
        guard candidate.notAfter > now, candidate.notBefore <= now + 3_600 else {
            throw SocketError("the certificate the CA sent is not valid now (or cannot be read)")
        }
        if let missing = domains.first(where: { !candidate.covers(host: $0) }) {
            throw SocketError("the certificate the CA sent is not valid for \(missing)")
        }
        _ = try TLSContext(certificate: candidate, library: TLSLibrary())
    }

    /// "2025-01-02 04:00:00 UTC".
    static func describe(time seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S UTC", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "4 min", "3 h".
    static func describe(seconds: Int64) -> String {
        seconds < 120 ? "\(seconds) s" : seconds < 7_200 ? "\(seconds / 60) min" : "\(seconds / 3_600) h"
    }
}
