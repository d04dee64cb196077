import TollgateIO

/// Per-user and global in-flight slots shared by every Tollgate instance, as Redis sorted-set leases.
///
/// One instance per event loop, bound to that loop's `RedisClient`; loop thread only (marked `Sendable` only so it
/// can be captured by `EventLoop.execute` hops). Acquire is one script (purge expired, count, add); the instance
/// keeps every lease it holds alive with `heartbeat` (one script for all of them, call it every lease/3 or so, or
/// let `startHeartbeats` do it), and `release` removes one. An instance that dies stops heartbeating, and its
/// slots come back within `leaseMillis`. Waiting for a slot (the FIFO queue) stays local; this only answers "is
/// there a slot now".
///
/// If Redis fails after running an acquire but before its reply arrived, that slot is held by nobody until its lease
/// runs out: the lease time bounds every such leak.
public final class SharedLeases: @unchecked Sendable {
    /// Caps, lease time and key names.
    public struct Settings: Sendable, Equatable {
        /// Slots per user across the fleet.
        public var perUser = 2
        /// Slots overall across the fleet.
        public var global = 4
        /// A slot not extended for this long is free again.
        public var leaseMillis: UInt64 = 30_000
        /// Keys are `<prefix>{inflight}:global` and `<prefix>{inflight}:u:<user>`.
        public var keyPrefix = "tollgate:"
        /// Defaults: 2 per user, 4 overall, 30 s leases.
        public init() {}
    }

    /// A held slot; give it back with `release` when the request ends.
    public struct Lease: Sendable, Hashable {
        /// Unique across the fleet: the instance's random id and a counter.
        public let id: String
        /// Whose slot it is.
        public let user: String
    }

    /// The outcome of `acquire`.
    public enum Acquire: Sendable, Equatable {
        /// Go ahead; release the lease when done.
        case acquired(Lease)
        /// `user` already holds `perUser` slots fleet-wide (`inFlight` of them).
        case userFull(inFlight: Int)
        /// The fleet holds `global` slots (`inFlight` of them).
        case globalFull(inFlight: Int)
        /// Redis could not answer; nothing is held. The caller applies its fallback.
        case unavailable(RedisError)
    }

    /// Running totals for metrics (loop thread).
    public struct Counters: Sendable, Equatable {
        /// Leases granted.
        public var acquired: UInt64 = 0
        /// Acquires refused at a cap.
        public var refused: UInt64 = 0
        /// Acquires, releases or heartbeats that Redis could not answer.
        public var unavailable: UInt64 = 0
        /// Held leases a heartbeat found already expired and purged (this instance was cut off too long).
        public var lost: UInt64 = 0
        /// All zero.
        public init() {}
    }

    /// The client this talks through.
    public let client: RedisClient
    /// The settings this was built with.
    public let settings: Settings
    private let instanceID: String
    private var nextSerial: UInt64 = 0
    private var held: [String: Lease] = [:]
    private var heartbeating = false
    /// Running totals.
    public private(set) var counters = Counters()

    /// Leases through `client` under `settings`; a random instance id keeps lease ids unique across the fleet.
    public init(client: RedisClient, settings: Settings) {
        self.client = client
        self.settings = settings
        let digits = Array("0123456789abcdef")
        instanceID = String(Syscall.randomBytes(8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// Leases this instance holds now.
    public var heldCount: Int { held.count }

    /// Takes a slot for `user` if both caps allow. Loop thread only; `completion` runs on the loop thread.
    /// `perUser`: this user's own cap (a `policy` line's `max-inflight`), nil for `settings.perUser`.
    public func acquire(user: String, perUser: Int? = nil, completion: @escaping (Acquire) -> Void) {
        acquire(user: user, perUser: perUser, nowMillis: nil, completion: completion)
    }

    /// As `acquire`, at an injected Redis-side time (tests).
    func acquire(user: String, perUser: Int? = nil, nowMillis: UInt64?, completion: @escaping (Acquire) -> Void) {
        nextSerial += 1
        let lease = Lease(id: "\(instanceID):\(nextSerial)", user: user)
        var args: [[UInt8]] = [String(settings.leaseMillis), String(perUser ?? settings.perUser), String(settings.global), lease.id].map { Array($0.utf8) }
        if let nowMillis { args.append(Array(String(nowMillis).utf8)) }
        client.evalScript(SharedLeaseScript.acquire, keys: [globalKey, userKey(user)], args: args) { [self] result in
            switch result {
            case .failure(let error):
                counters.unavailable += 1
                completion(.unavailable(error))
            case .success(let reply):
                guard let r = reply.elements, r.count == 3, let ok = r[0].int, let a = r[1].int, let b = r[2].int else {
                    counters.unavailable += 1
                    completion(.unavailable(.protocolViolation(reply.errorMessage ?? "unexpected script reply")))
                    return
                }
                if ok == 1 {
                    counters.acquired += 1
                    held[lease.id] = lease
                    completion(.acquired(lease))
                } else {
                    counters.refused += 1
                    completion(a == 1 ? .userFull(inFlight: Int(b)) : .globalFull(inFlight: Int(b)))
                }
            }
        }
    }

    /// Gives a slot back (idempotent). `completion`, if any, gets whether Redis still held it; on failure the slot
    /// comes back by itself when its lease runs out.
    public func release(_ lease: Lease, completion: ((Result<Bool, RedisError>) -> Void)? = nil) {
        held.removeValue(forKey: lease.id)
        client.evalScript(SharedLeaseScript.release, keys: [globalKey, userKey(lease.user)], args: [Array(lease.id.utf8)]) { [self] result in
            switch result {
            case .failure(let error):
                counters.unavailable += 1
                completion?(.failure(error))
            case .success(let reply):
                completion?(.success(reply.int == 1))
            }
        }
    }

    /// Extends every held lease by `leaseMillis` from now in one script. `completion` gets the leases found already
    /// expired (dropped from `held`; their requests may finish, but no longer count fleet-wide).
    public func heartbeat(completion: ((Result<[Lease], RedisError>) -> Void)? = nil) {
        heartbeat(nowMillis: nil, completion: completion)
    }

    /// As `heartbeat`, at an injected Redis-side time (tests).
    func heartbeat(nowMillis: UInt64?, completion: ((Result<[Lease], RedisError>) -> Void)?) {
        let leases = Array(held.values)
        guard !leases.isEmpty else { completion?(.success([])); return }
        var keys = [globalKey]
        var args: [[UInt8]] = [Array(String(settings.leaseMillis).utf8), nowMillis.map { Array(String($0).utf8) } ?? []]
        for lease in leases {
            keys.append(userKey(lease.user))
            args.append(Array(lease.id.utf8))
        }
        client.evalScript(SharedLeaseScript.heartbeat, keys: keys, args: args) { [self] result in
            switch result {
            case .failure(let error):
                counters.unavailable += 1
                completion?(.failure(error))
            case .success(let reply):
                let flags = reply.elements ?? []
                var lost: [Lease] = []
                for (i, lease) in leases.enumerated() where i >= flags.count || flags[i].int != 1 {
                    lost.append(lease)
                    held.removeValue(forKey: lease.id)
                }
                counters.lost += UInt64(lost.count)
                completion?(.success(lost))
            }
        }
    }

    /// Heartbeats every `leaseMillis / 3` on the client's loop until `stopHeartbeats`. Loop thread only.
    public func startHeartbeats() {
        guard !heartbeating else { return }
        heartbeating = true
        scheduleHeartbeat()
    }

    /// Stops the periodic heartbeat after the next tick. Loop thread only.
    public func stopHeartbeats() { heartbeating = false }

    private func scheduleHeartbeat() {
        client.loop.schedule(afterNanos: max(1, settings.leaseMillis / 3) * 1_000_000) { [weak self] in
            guard let self, self.heartbeating else { return }
            self.heartbeat(completion: nil)
            self.scheduleHeartbeat()
        }
    }

    private var globalKey: [UInt8] { Array("\(settings.keyPrefix){inflight}:global".utf8) }

    private func userKey(_ user: String) -> [UInt8] { Array("\(settings.keyPrefix){inflight}:u:\(user)".utf8) }
}
