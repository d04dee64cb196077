import Glibc
import Synchronization
import TollgateIO

/// Keeps a `KeyRing` in step with the key store, on its own thread: every `pollMillis` it asks the store whether
/// the keys changed (the key table's change counter, one cheap query; never moved by the ledger or last-use times) and, only then, reloads the table into
/// the ring, so a `tollgate keys revoke` stops the key on every worker within a poll. Every `flushSeconds` it writes
/// the last-use times the ring collected, in one transaction: requests never write the database. With `fleet`, it
/// also polls the fleet's revocations (Redis), hands them to the ring and writes them to its own database.
///
/// A store that fails (locked, unreadable) keeps the snapshot in force and is reported once until it works again.
/// Call `stop` before releasing it: it writes the last-use times one last time.
public final class KeyWatcher: @unchecked Sendable {
    private let store: any KeyStore
    private let ring: KeyRing
    private let fleet: (any FleetRevocations)?
    private let pollMillis: Int32
    private let flushNanos: UInt64
    private let wake: WakeChannel
    private let stopping = Atomic<Bool>(false)
    private let stopped = Mutex<Bool>(false)
    private var thread: pthread_t?
    // Confined to the watcher thread after init (and to `refresh`'s caller in tests, which run no thread).
    private var lastToken: Int64?
    private var failing = false
    /// Ids revoked fleet-wide not yet written to the store.
    private var unsavedFleetRevocations: Set<String> = []

    /// Loads the store into `ring` now (on the caller's thread: start-up) and, when `start` is true, starts the
    /// thread. Throws when the first load fails: a server must not start without its keys.
    public init(store: any KeyStore, ring: KeyRing, fleet: (any FleetRevocations)? = nil, pollMillis: Int = 250,
                flushSeconds: Int = 60, start: Bool = true) throws(KeyStoreError) {
        self.store = store
        self.ring = ring
        self.fleet = fleet
        self.pollMillis = Int32(max(1, pollMillis))
        flushNanos = UInt64(max(1, flushSeconds)) * 1_000_000_000
        guard let channel = WakeChannel() else { throw KeyStoreError("cannot create the key watcher's wake-up socket pair") }
        wake = channel
        do throws(KeyStoreError) {
            lastToken = try store.changeToken()
            ring.replace(with: try store.all())
        } catch {
            wake.close()
            throw error
        }
        if start { thread = spawnThread(name: "tollgate-keys") { [self] in run() } }
    }

    /// One poll: reloads the ring when the store changed, and takes the fleet's revocations. Returns whether the
    /// ring was reloaded. The thread calls it; tests without the thread call it directly.
    @discardableResult
    public func refresh() -> Bool {
        var reloaded = false
        do throws(KeyStoreError) {
            let token = try store.changeToken()
            if token != lastToken {
                ring.replace(with: try store.all())
                lastToken = token
                reloaded = true
            }
            if failing {
                failing = false
                Diagnostics.info("keys: the key table can be read again")
            }
        } catch {
            if !failing {
                failing = true
                Diagnostics.warn("keys: \(error.description); the keys loaded before stay in force")
            }
        }
        if let fleet, let revoked = fleet.revokedSince() {
            ring.revokeFleetWide(revoked)
            unsavedFleetRevocations.formUnion(revoked)
        }
        saveFleetRevocations()
        return reloaded
    }

    /// Writes the fleet's revocations read from Redis into this server's own database, so that a restart while
    /// Redis is down (or was emptied) still refuses them; on failure they are tried again on the next poll.
    private func saveFleetRevocations() {
        guard !unsavedFleetRevocations.isEmpty else { return }
        do throws(KeyStoreError) {
            let count = try store.revoke(ids: unsavedFleetRevocations, at: ring.clock())
            unsavedFleetRevocations.removeAll()
            if count > 0 { Diagnostics.info("keys: \(count) key(s) revoked fleet-wide recorded in this server's key table") }
        } catch {
            Diagnostics.warn("keys: cannot record fleet-wide revocations in the key table: \(error.description)")
        }
    }

    /// Writes the last-use times the ring collected (one transaction); on failure they are kept for the next try.
    public func flushLastUsed() {
        let times = ring.takeLastUsed()
        guard !times.isEmpty else { return }
        do throws(KeyStoreError) {
            try store.recordLastUsed(times)
        } catch {
            Diagnostics.warn("keys: cannot record when keys were last used: \(error.description)")
        }
    }

    /// Stops the thread, then writes the last-use times once more. Idempotent.
    public func stop() {
        let first = stopped.withLock { wasStopped in
            defer { wasStopped = true }
            return !wasStopped
        }
        guard first else { return }
        stopping.store(true, ordering: .releasing)
        wake.post()
        if let thread { pthread_join(thread, nil) }
        thread = nil
        wake.close()
        flushLastUsed()
    }

    private func run() {
        var fds = [pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)]
        var nextFlush = Syscall.monotonicNanos() &+ flushNanos
        while !stopping.load(ordering: .acquiring) {
            fds[0].revents = 0
            _ = poll(&fds, 1, pollMillis)
            if stopping.load(ordering: .acquiring) { return }
            refresh()
            if Syscall.monotonicNanos() >= nextFlush {
                flushLastUsed()
                nextFlush = Syscall.monotonicNanos() &+ flushNanos
            }
        }
    }
}

/// Revocations shared by a fleet of servers (Redis): `keys revoke` publishes there too, and each server's key
/// watcher asks on every poll. Called from the watcher's thread only; may block briefly.
public protocol FleetRevocations: AnyObject, Sendable {
    /// The ids revoked fleet-wide, when they changed since the last call (nil: unchanged or unavailable).
    func revokedSince() -> Set<String>?
}
