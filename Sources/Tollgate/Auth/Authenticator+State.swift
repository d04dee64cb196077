extension Authenticator {
    /// One hash computation waiting for (or running on) a worker.
    struct Job: Sendable {
        var key: [UInt8]
        var password: [UInt8]
        var hash: String
        var format: HashFormat
        var knownUser: Bool
    }

    /// A check waiting for a job's verdict.
    struct Waiter: Sendable {
        var login: LoginThrottle.Key
        /// The name it is allowed under when the password is right: the users file's spelling as its check began
        /// (a check that joins a running hash after a reload respelled the name gets the new spelling).
        var user: String
        var completion: @Sendable (AuthOutcome) -> Void
    }

    /// Everything the authenticator's lock guards.
    struct State: Sendable {
        var users: UsersFile
        var throttle: LoginThrottle
        /// Checks in progress by cache key: the single-flight table. A key is here from enqueue until its
        /// verdict has been cached.
        var inflight: [[UInt8]: [Waiter]] = [:]
        var stats = Stats()
        var stopped = false
        private var jobs: [Job] = []
        private var head = 0

        init(users: UsersFile, throttle: LoginThrottle) {
            self.users = users
            self.throttle = throttle
        }

        /// Jobs waiting for a worker.
        var queued: Int { jobs.count - head }

        mutating func enqueue(_ job: Job) {
            jobs.append(job)
            stats.queued = queued
        }

        mutating func dequeue() -> Job? {
            guard head < jobs.count else { return nil }
            let job = jobs[head]
            jobs[head].password = []
            head += 1
            // Compact once the consumed prefix dominates, so the array does not grow forever.
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64, head * 2 >= jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            stats.queued = queued
            return job
        }

        /// Removes every waiting job (at shutdown) and returns their waiters.
        mutating func drainQueue() -> [Waiter] {
            var waiters: [Waiter] = []
            while let job = dequeue() {
                waiters += inflight.removeValue(forKey: job.key) ?? []
            }
            return waiters
        }
    }
}
