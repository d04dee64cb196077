import Glibc

/// Race-free signal handling: the signals are blocked in every thread (the mask is inherited, so call this before
/// starting the server) and one thread receives them with `sigwait`.
public enum Signals {
    /// SIGTERM and SIGINT drain gracefully; a second one stops at once. SIGHUP reloads. SIGPIPE is ignored
    /// (writes use MSG_NOSIGNAL, OpenSSL's do not).
    public static func install(onTerminate: @escaping @Sendable (Int32) -> Void,
                               onReload: @escaping @Sendable () -> Void = {},
                               onReopenLogs: @escaping @Sendable () -> Void = {}) {
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        sigaddset(&set, SIGUSR1)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waitSet = set
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
