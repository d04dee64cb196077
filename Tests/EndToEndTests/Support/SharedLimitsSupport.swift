import Glibc
import TollgateTestSupport

extension RedisServerProcess {
    /// Inference slot leases held fleet-wide now (members of the global lease set).
    func leasesHeld() throws -> Int {
        Int(try command("ZCARD", "tollgate:{inflight}:global").dropFirst()) ?? -1
    }
}

/// Polls `condition` until it holds (true) or about 30 s pass (false): for state reached by another process
/// (Redis restarting, a reconnect), not for time passing.
func eventually(_ condition: () -> Bool) -> Bool {
    for _ in 0..<3000 {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
