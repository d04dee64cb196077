import Glibc
import Synchronization
import TollgateIO

/// Logins with the `ollama` CLI's own keys (`OLLAMA_AUTH`): the `authorized-keys` in force, the `ts` window and
/// the replay cache, shared by every worker of the process.
///
/// A check is a dictionary lookup, one Ed25519 verification (a few hundred microseconds of one core at most, on
/// the calling loop: it is CPU work like a TLS handshake, not blocking I/O, and far cheaper than the bcrypt checks
/// that run on the authenticator's threads; only a key listed in `authorized-keys` gets that far) and one short
/// lock for the replay cache. The failed-login throttle around it is the authenticator's
/// (`Authenticator.checkSigned`). Every signed request is checked: none is remembered on its connection, since a
/// signature covers one method, path and `ts` only.
///
/// Thread-safe.
public final class SignedLogins: Sendable {
    /// What a check decided.
    enum Verdict: Equatable {
        /// The signature verified, fresh: proceed as `user`; the request's `ts` leaves the window in `secondsLeft`.
        case allowed(user: String, secondsLeft: Int64)
        /// Refused, and why (every reason but `.overloaded` and `.keyOverShare` counts as a failed login).
        case refused(OllamaKeyResult)
        /// The key already holds its share of the replay cache: 429 for this key only, retry in `retryAfterSeconds`.
        case keyOverShare(retryAfterSeconds: Int)
        /// The client is throttled after failed logins: refused before any check.
        case throttled(retryAfterSeconds: Int)
    }

    /// Seconds a `ts` may be off the server's clock, either way.
    public static let windowSeconds: Int64 = 300
    /// Signatures the replay cache holds at most (a few megabytes); see `ReplayCache`.
    public static let replayCapacity = 100_000
    /// Signatures one key may have in the replay cache at most: 5000 in the 300 s a `ts` of now is kept is a
    /// sustained 16 signed requests a second, far beyond one person's CLI; twenty keys that busy fill the cache.
    public static let replayPerKey = 5_000

    private let clock: @Sendable () -> Int64
    private let keys: Mutex<AuthorizedKeys>
    private let replays: Mutex<ReplayCache>
    private let generation = Atomic<Int>(0)

    /// Starts with `keys`. `clock` is the wall clock in Unix seconds (inject one in tests).
    public init(keys: AuthorizedKeys, replayCapacity: Int = SignedLogins.replayCapacity,
                replayPerKey: Int = SignedLogins.replayPerKey,
                clock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }) {
        self.keys = Mutex(keys)
        self.clock = clock
        replays = Mutex(ReplayCache(window: SignedLogins.windowSeconds, capacity: replayCapacity,
                                    perKey: replayPerKey))
    }

    /// Swaps in new keys atomically (live reload); a removed key stops working for the next request, and for a
    /// request whose check is under way (see `check`).
    public func replaceKeys(_ new: AuthorizedKeys) {
        keys.withLock { $0 = new }
        generation.add(1, ordering: .releasing)
    }

    /// The keys in force.
    public var authorizedKeys: AuthorizedKeys {
        keys.withLock { $0 }
    }

    /// Changes whenever the keys change.
    public var keysGeneration: Int { generation.load(ordering: .acquiring) }

    /// The `authorized-keys` entry of a credential's key, if listed now: for logs and the throttle's key only;
    /// `check` looks the key up again itself.
    func entry(for credential: SignedCredential) -> AuthorizedKey? {
        keys.withLock { $0.entry(for: credential.publicKey) }
    }

    /// Checks a signed request against the keys and users in force: the key is listed, its user named in the
    /// users file and not disabled there (removing the user revokes the key's login), `ts` within the window, the
    /// signature right, and the signature not used before, except on `connection` itself (nil: a connection that
    /// carries several clients, where any repeat is a replay). `verifier` is the calling thread's.
    ///
    /// The key is looked up here, not earlier in the request's phases, and the keys' generation is read before
    /// that lookup: when the keys change while the signature is being verified, the key is looked up again, and a
    /// key removed (or moved to another user) by then is refused.
    func check(_ request: SignedRequest, users: UsersFile, connection: UInt64?,
               verifier: Ed25519Verifier) -> Verdict {
        let generationBefore = generation.load(ordering: .acquiring)
        guard let entry = entry(for: request.credential) else { return .refused(.unknownKey) }
        guard let listed = users.entries[entry.user] else {
            let disabled = users.disabled.contains { $0.user == entry.user }
            return .refused(disabled ? .disabledUser : .unknownUser)
        }
        let now = clock()
        guard let ts = request.ts, abs(now - ts) <= SignedLogins.windowSeconds else { return .refused(.stale) }
        guard verifier.verify(request.credential.signature, of: request.message, with: entry.key) else {
            return .refused(.badSignature)
        }
        if generation.load(ordering: .acquiring) != generationBefore {
            guard let current = self.entry(for: request.credential), current.user == entry.user else {
                return .refused(.unknownKey)
            }
        }
        let seen = replays.withLock {
            $0.insert(request.credential.signature, key: request.credential.publicKey, ts: ts, connection: connection,
                      now: now)
        }
        switch seen {
        case .fresh, .sameConnection:
            // Under the users file's spelling (the `authorized-keys` line may spell the name otherwise).
            return .allowed(user: listed.name, secondsLeft: ts + SignedLogins.windowSeconds - now)
        case .replayed:
            return .refused(.replayed)
        case .keyOverShare(let seconds):
            return .keyOverShare(retryAfterSeconds: seconds)
        case .full:
            return .refused(.overloaded)
        }
    }

    /// Signatures in the replay cache now (for tests and metrics).
    var replayCount: Int { replays.withLock { $0.count } }

    /// Signatures of `publicKey` in the replay cache now (for tests).
    func replayCount(of publicKey: [UInt8]) -> Int { replays.withLock { $0.count(of: publicKey) } }
}
