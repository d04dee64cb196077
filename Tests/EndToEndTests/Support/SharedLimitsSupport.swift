import FakeOllama
import Glibc
import Testing
import Tollgate
import TollgateIO
import TollgateTestSupport

extension RedisServerProcess {
    /// Shared limits through this server for a fleet of `fleet`, with `fallback` while it is down; the client
    /// reconnects after 20 ms (at most 100 ms), so a restart is seen quickly.
    func sharedLimits(fleet: Int = 1, fallback: SharedLimitsSettings.Fallback = .local) -> SharedLimitsSettings {
        var redis = RedisConfiguration(url: url())!
        redis.initialBackoffMillis = 20
        redis.maxBackoffMillis = 100
        var shared = SharedLimitsSettings(redis: redis)
        shared.fleetSize = fleet
        shared.fallback = fallback
        return shared
    }

    /// Kills the server (a crash) and waits until `proxy`'s Redis client has noticed; returns `proxy`'s
    /// shared-limits status, to ask about fallbacks and recovery.
    @discardableResult
    func kill(seenBy proxy: Proxy, sourceLocation: SourceLocation = #_sourceLocation) throws -> SharedLimitsStatus {
        let status = try #require(proxy.server.sharedStatus, sourceLocation: sourceLocation)
        kill()
        #expect(eventually { !status.isUp }, "the client never noticed Redis went away", sourceLocation: sourceLocation)
        return status
    }

    /// Inference slot leases held fleet-wide now (members of the global lease set).
    func leasesHeld() throws -> Int {
        Int(try command("ZCARD", "tollgate:{inflight}:global").dropFirst()) ?? -1
    }
}

/// Two proxies configured by `configure` in front of one fake Ollama with `tokens` tokens a stream (two Tollgates
/// of a fleet sharing one Redis); an error thrown by `configure` is rethrown before `body` runs.
func withTwoProxies(tokens: Int = 5, configure: (inout ServerConfig) throws -> Void,
                    body: (Proxy, Proxy, FakeOllamaServer) throws -> Void) throws {
    var failure: (any Error)?
    func configureOne(_ config: inout ServerConfig) {
        do { try configure(&config) } catch { failure = error }
    }
    try withProxyAndFake(tokens: tokens, configure: configureOne) { a, fake in
        try withProxy(configure: configureOne, upstream: fake) { b in
            if let failure { throw failure }
            try body(a, b, fake)
        }
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
