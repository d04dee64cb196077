import Glibc
import Synchronization
import TollgateIO

/// Logins with the `ollama` CLI's own keys (`OLLAMA_AUTH`): the `authorized-keys` in force, the `ts` window and
/// the replay cache, shared by every worker of the process.
///
/// A check is a dictionary lookup, one Ed25519 verification (a few tens of microseconds of one core, on the
/// calling loop: it is CPU work like a TLS record, not blocking I/O, and three orders of magnitude cheaper than the
/// bcrypt checks that run on the authenticator's threads; a hop to a thread and back would cost about as much as
/// the verification) and one short lock for the replay cache. The failed-login throttle around it is the
/// authenticator's (`Authenticator.checkSigned`).
///
/// Thread-safe.
public final class SignedLogins: Sendable {
    /// What a check decided.
    enum Verdict: Equatable {
        /// The signature verified, fresh: proceed as `user`; the request's `ts` leaves the window in `secondsLeft`.
        case allowed(user: String, secondsLeft: Int64)
        /// Refused, and why (every reason but `.overloaded` counts as a failed login).
        case refused(OllamaKeyResult)
        /// The client is throttled after failed logins: refused before any check.
        case throttled(retryAfterSeconds: Int)
    }

    /// Seconds a `ts` may be off the server's clock, either way.
    public static let windowSeconds: Int64 = 300
    /// Signatures the replay cache holds at most (a few megabytes); see `ReplayCache`.
    public static let replayCapacity = 100_000

    private let clock: @Sendable () -> Int64
    private let keys: Mutex<AuthorizedKeys>
    private let replays: Mutex<ReplayCache>
    private let generation = Atomic<Int>(0)

    /// Starts with `keys`. `clock` is the wall clock in Unix seconds (inject one in tests).
    public init(keys: AuthorizedKeys, replayCapacity: Int = SignedLogins.replayCapacity,
                clock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }) {
        self.keys = Mutex(keys)
        self.clock = clock
        replays = Mutex(ReplayCache(window: SignedLogins.windowSeconds, capacity: replayCapacity))
    }

    /// Swaps in new keys atomically (live reload); a removed key stops working for the next request.
    public func replaceKeys(_ new: AuthorizedKeys) {
        keys.withLock { $0 = new }
        generation.add(1, ordering: .releasing)
    }

    /// The keys in force.
    public var authorizedKeys: AuthorizedKeys {
        keys.withLock { $0 }
    }

    /// Changes whenever the keys change: a login a connection remembers is checked again after a change.
    public var keysGeneration: Int { generation.load(ordering: .acquiring) }

    /// The `authorized-keys` entry of a credential's key, if listed.
    func entry(for credential: SignedCredential) -> AuthorizedKey? {
        keys.withLock { $0.entry(for: credential.publicKey) }
    }

    /// Checks a signed request whose key is `entry` (nil: not listed) against the users in force: the key is
    /// listed, its user not disabled in the users file, `ts` within the window, the signature right, and the
    /// signature not used before from another connection than `connection`. `verifier` is the calling thread's.
    /// A user the users file does not name at all is allowed: the key file is the admin's word (see README).
    func check(_ request: SignedRequest, entry: AuthorizedKey?, users: UsersFile, connection: UInt64,
               verifier: Ed25519Verifier) -> Verdict {
        guard let entry else { return .refused(.unknownKey) }
        if users.entries[entry.user] == nil, users.disabled.contains(where: { $0.user == entry.user }) {
            return .refused(.disabledUser)
        }
        let now = clock()
        guard let ts = request.ts, abs(now - ts) <= SignedLogins.windowSeconds else { return .refused(.stale) }
        guard verifier.verify(request.credential.signature, of: request.message, with: entry.key) else {
            return .refused(.badSignature)
        }
        let seen = replays.withLock { $0.insert(request.credential.signature, ts: ts, connection: connection, now: now) }
        switch seen {
        case .fresh, .sameConnection:
            return .allowed(user: entry.user, secondsLeft: ts + SignedLogins.windowSeconds - now)
        case .replayed:
            return .refused(.replayed)
        case .full:
            return .refused(.overloaded)
        }
    }

    /// Signatures in the replay cache now (for tests and metrics).
    var replayCount: Int { replays.withLock { $0.count } }
}
