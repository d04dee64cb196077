import Glibc

/// Race-free signal handling: the signals are blocked in every thread (the mask is inherited: call `block` before
/// any thread starts) and one thread receives them with `sigwait`.
public enum Signals {
    static var handled: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        sigaddset(&set, SIGUSR1)
        return set
    }

    /// Blocks the handled signals in the calling thread and every thread it starts later. Call first thing.
    public static func block() {
        signal(SIGPIPE, SIG_IGN)
        var set = handled
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// SIGTERM and SIGINT drain gracefully; a second one stops at once. SIGHUP reloads. SIGPIPE is ignored
    /// (writes use MSG_NOSIGNAL, OpenSSL's do not).
    public static func install(onTerminate: @escaping @Sendable (Int32) -> Void,
                               onReload: @escaping @Sendable () -> Void = {},
                               onReopenLogs: @escaping @Sendable () -> Void = {}) {
        block()
        let waitSet = handled
        _ = spawnThread(name: "tollgate-signals") {
            var set = waitSet
            var count = 0
            while true {
                var sig: Int32 = 0
                guard sigwait(&set, &sig) == 0 else { continue }
                if sig == SIGHUP {
                    onReload()
                    continue
                }
                if sig == SIGUSR1 {
                    onReopenLogs()
                    continue
                }
                count += 1
                if count > 1 { _exit(130) }
                onTerminate(sig)
            }
        }
    }
}
