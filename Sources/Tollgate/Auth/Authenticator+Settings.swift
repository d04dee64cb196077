import Glibc

extension Authenticator {
    /// Tuning for the authenticator; the defaults suit a small server.
    public struct Settings: Sendable {
        /// Password-hashing threads (default: one per online core).
        public var workers: Int
        /// Checks that may wait for a worker; past it, new checks are `.overloaded` (default 256).
        public var queueLimit: Int
        /// Verified-credential cache entries (default 10,000).
        public var cacheEntries: Int
        /// How long a cached verdict lives, in seconds (default 300).
        public var cacheTTLSeconds: Double
        /// Failed logins per (client prefix, user) that throttle it, and three times as many per client prefix over
        /// all users (see `LoginThrottle`); 0 disables the throttle (default 10, the `login-fail-limit` setting).
        public var failureLimit: Int
        /// The window those failures are counted in, in seconds (default 60, `login-fail-window`).
        public var failureWindowSeconds: Double

        /// The defaults, with any value overridden.
        public init(
            workers: Int = Settings.onlineCores(),
            queueLimit: Int = 256,
            cacheEntries: Int = 10_000,
            cacheTTLSeconds: Double = 300,
            failureLimit: Int = 10,
            failureWindowSeconds: Double = 60
        ) {
            self.workers = workers
            self.queueLimit = queueLimit
            self.cacheEntries = cacheEntries
            self.cacheTTLSeconds = cacheTTLSeconds
            self.failureLimit = failureLimit
            self.failureWindowSeconds = failureWindowSeconds
        }

        /// The number of online cores (at least 1).
        public static func onlineCores() -> Int {
            max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        }

        static func nanos(_ seconds: Double) -> UInt64 {
            guard seconds > 0 else { return 0 }
            return seconds >= 1e9 ? UInt64.max / 2 : UInt64(seconds * 1_000_000_000)
        }
    }

    /// Counters since creation, for metrics and tests.
    public struct Stats: Sendable, Equatable {
        /// Password verifications actually computed (dummy ones included).
        public var hashesComputed = 0
        /// Of those, verifications of the dummy hash for unknown users.
        public var dummyVerifications = 0
        /// Checks answered from the cache.
        public var cacheHits = 0
        /// Checks that joined an identical check already queued or running.
        public var collapsed = 0
        /// Checks refused because the queue was full.
        public var overloaded = 0
        /// Checks refused because the client prefix, or the user from it, was throttled.
        public var throttled = 0
        /// Checks that ended `.allowed`.
        public var allowed = 0
        /// Checks that ended `.denied` (each one also counts as a failure for its client prefix and user).
        public var denied = 0
        /// Checks waiting for a worker right now.
        public var queued = 0

        /// All zero.
        public init() {}
    }
}
